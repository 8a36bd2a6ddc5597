"""Shared pytest fixtures.

Audio fixtures are synthesised into ``tmp_path`` at test time (nothing binary is committed)
and written with soundfile directly, so that they do not depend on the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# ============================================================================================
# timeouts (pyproject.toml: pytest-timeout, method "thread")


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings) -> bool | None:
    """pytest-timeout's ``thread`` method, naming the test first: at the timeout a timer thread
    writes ``TIMEOUT <test id>`` to the terminal, then pytest-timeout's own report (every
    thread's stack) and ends the process, whatever the main thread is stuck in. Other methods
    are left to pytest-timeout."""
    if settings.method != "thread":
        return None
    import threading

    import pytest_timeout

    def expire() -> None:
        capture = item.config.pluginmanager.getplugin("capturemanager")
        if capture is not None:
            capture.suspend_global_capture(item)  # so that the line reaches the terminal
        item.config.get_terminal_writer().line(
            f"\nTIMEOUT {item.nodeid} ran past its {settings.timeout:g} s timeout: the stacks follow, then the run stops",
            red=True, bold=True,
        )  # fmt: skip
        pytest_timeout.timeout_timer(item, settings)  # the stacks, then os._exit(1)

    timer = threading.Timer(settings.timeout, expire)
    timer.name = f"pytest-timeout {item.nodeid}"

    def cancel() -> None:
        timer.cancel()
        timer.join()

    item.cancel_timeout = cancel  # what pytest-timeout's pytest_timeout_cancel_timer calls
    timer.start()
    return True


# ============================================================================================
# audio fixtures

FIXTURE_SR_HZ = 44_100  # native rate of the synthesised files (resampled to 22 050 on load)
TONE_DURATION_S = 8.0
TONE_F0_HZ = 220.0  # A3: harmonics at 440 (A4), 660 (E5), 880 (A5) Hz

_SUBTYPES = {".wav": "PCM_16", ".flac": "PCM_16", ".ogg": "VORBIS", ".mp3": "MPEG_LAYER_III"}
_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}

MP3_WRITABLE = "MP3" in sf.available_formats()


def synth_tone(
    *,
    duration_s: float = TONE_DURATION_S,
    sr_hz: int = FIXTURE_SR_HZ,
    channels: int = 2,
    f0_hz: float = TONE_F0_HZ,
    n_harmonics: int = 4,
    amplitude: float = 0.3,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A musical-ish test tone: ``f0_hz`` with harmonics of amplitude 1/k, a 4 Hz tremolo
    and a slightly different right channel.

    Returns
    -------
    np.ndarray [shape=(n_samples, channels), dtype=float64]
        Peak at most ``amplitude * (1 + noise-ish)``.
    """
    t = np.arange(int(round(duration_s * sr_hz))) / sr_hz
    signal = sum(np.sin(2 * np.pi * k * f0_hz * t) / k for k in range(1, n_harmonics + 1))
    signal = signal / np.max(np.abs(signal))
    signal = signal * (0.8 + 0.2 * np.sin(2 * np.pi * 4.0 * t))
    if noise:
        signal = signal + noise * np.random.default_rng(seed).standard_normal(t.size)
    columns = [amplitude * signal * (1.0 - 0.2 * c) for c in range(channels)]
    return np.stack(columns, axis=1)


def write_audio(
    path: Path, data: np.ndarray, sr_hz: int = FIXTURE_SR_HZ, subtype: str | None = None
) -> Path:
    """Write ``data`` to ``path`` with soundfile, format from the extension."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr_hz, format=_FORMATS[suffix], subtype=subtype or _SUBTYPES[suffix])
    return path


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    """An empty folder for this test's audio files."""
    folder = tmp_path / "audio"
    folder.mkdir()
    return folder


@pytest.fixture
def make_tone(audio_dir: Path) -> Callable[..., Path]:
    """Factory: ``make_tone("name.flac", f0_hz=..., duration_s=..., ...)`` -> Path.

    Keyword arguments go to :func:`synth_tone` (plus ``subtype``); MP3 skips the test when
    libsndfile cannot write it.
    """

    def make(name: str, *, subtype: str | None = None, **synth_kwargs: object) -> Path:
        if name.lower().endswith(".mp3") and not MP3_WRITABLE:
            pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write MP3")
        sr_hz = int(synth_kwargs.get("sr_hz", FIXTURE_SR_HZ))  # type: ignore[arg-type]
        data = synth_tone(**synth_kwargs)  # type: ignore[arg-type]
        return write_audio(audio_dir / name, data, sr_hz, subtype)

    return make


@pytest.fixture
def tone_wav(make_tone: Callable[..., Path]) -> Path:
    """8 s, 44.1 kHz, stereo 16-bit WAV of a 220 Hz tone with harmonics."""
    return make_tone("tone.wav")


@pytest.fixture
def tone_flac(make_tone: Callable[..., Path]) -> Path:
    """The same tone as :func:`tone_wav`, as FLAC."""
    return make_tone("tone.flac")


@pytest.fixture
def tone_ogg(make_tone: Callable[..., Path]) -> Path:
    """The same tone as :func:`tone_wav`, as OGG/Vorbis."""
    return make_tone("tone.ogg")


@pytest.fixture
def tone_mp3(make_tone: Callable[..., Path]) -> Path:
    """The same tone as :func:`tone_wav`, as MP3 (skipped when libsndfile cannot write MP3)."""
    return make_tone("tone.mp3")


@pytest.fixture
def tone_files(make_tone: Callable[..., Path]) -> dict[str, Path]:
    """The tone of :func:`tone_wav` in every format this libsndfile can write, by extension."""
    suffixes = (".wav", ".flac", ".ogg") + ((".mp3",) if MP3_WRITABLE else ())
    return {suffix: make_tone(f"tone{suffix}") for suffix in suffixes}


@pytest.fixture
def silent_wav(audio_dir: Path) -> Path:
    """8 s of digital silence (stereo WAV)."""
    return write_audio(audio_dir / "silence.wav", np.zeros((int(8 * FIXTURE_SR_HZ), 2)))


@pytest.fixture
def empty_wav(audio_dir: Path) -> Path:
    """A valid WAV header with 0 samples."""
    return write_audio(audio_dir / "empty.wav", np.zeros((0, 2)))


@pytest.fixture
def zero_byte_wav(audio_dir: Path) -> Path:
    """A 0-byte file named ``.wav``."""
    path = audio_dir / "zero-bytes.wav"
    path.write_bytes(b"")
    return path


@pytest.fixture
def short_wav(audio_dir: Path) -> Path:
    """1 s of tone: below MIN_DURATION_S."""
    return write_audio(audio_dir / "short.wav", synth_tone(duration_s=1.0))


@pytest.fixture
def corrupt_wav(audio_dir: Path) -> Path:
    """8 kB of random bytes named ``.wav``."""
    path = audio_dir / "corrupt.wav"
    path.write_bytes(np.random.default_rng(1).bytes(8192))
    return path


@pytest.fixture
def corrupt_mp3(audio_dir: Path) -> Path:
    """8 kB of random bytes named ``.mp3``."""
    path = audio_dir / "corrupt.mp3"
    path.write_bytes(np.random.default_rng(2).bytes(8192))
    return path


@pytest.fixture
def m4a_file(audio_dir: Path) -> Path:
    """A file with an unsupported extension (its content does not matter)."""
    path = audio_dir / "song.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    return path



# ============================================================================================
# the signing key (songsim.signed): a test run signs with a key of its own, never the user's


@pytest.fixture(scope="session", autouse=True)
def signing_key_file(tmp_path_factory) -> Path:
    """``$SONGSIM_KEY_FILE`` for the whole run (set before any catalogue is built; inherited by
    the CLI and app subprocesses): outside every catalogue, created on first use."""
    import os

    path = tmp_path_factory.mktemp("signing-key") / "signing.key"
    previous = os.environ.get("SONGSIM_KEY_FILE")
    os.environ["SONGSIM_KEY_FILE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("SONGSIM_KEY_FILE", None)
    else:
        os.environ["SONGSIM_KEY_FILE"] = previous


# ============================================================================================
# built catalogues (session-wide: features, spaces and maps are fitted once per test run)


@pytest.fixture(scope="session")
def built_catalogue(tmp_path_factory) -> Path:
    """A small labelled catalogue (tests/catalogues.py), built as a first start builds it: the
    default spaces (handcrafted, random) with every default map. Nothing is trained: a test
    that needs a trained space uses :func:`trained_catalogue`."""
    from catalogues import make_small_catalogue

    from songsim.build import DEFAULT_SPACES, build

    root = make_small_catalogue(tmp_path_factory.mktemp("catalogue"))
    build(root, spaces=DEFAULT_SPACES, n_jobs=1)
    return root


@pytest.fixture
def catalogue_dir(built_catalogue, tmp_path) -> Path:
    """A copy of :func:`built_catalogue` of this test's own, free to build into or change (a
    module whose tests share one copy overrides it with a module-scoped fixture of this name)."""
    import shutil

    return Path(shutil.copytree(built_catalogue, tmp_path / "copy"))


@pytest.fixture(scope="session")
def trained_catalogue(built_catalogue, tmp_path_factory) -> Path:
    """A copy of :func:`built_catalogue` with ``catalogues.TRAINED_SPACES`` built too, with
    their maps, every trainable one trained for ``catalogues.TRAINED_EPOCHS`` (1) epoch: an
    epochs override, which their pages show. Its tests assert shapes, records, pages, metrics
    and determinism, no quality figure (one epoch reaches none). Every test that uses it is
    marked ``slow`` (:func:`pytest_collection_modifyitems`): training costs tens of seconds."""
    import shutil

    from catalogues import TRAINED_EPOCHS, TRAINED_SPACES

    from songsim.build import build
    from songsim.spaces.base import TrainingOptions

    root = Path(shutil.copytree(built_catalogue, tmp_path_factory.mktemp("trained") / "catalogue"))
    report = build(root, spaces=TRAINED_SPACES, n_jobs=1, training=TrainingOptions(max_epochs=TRAINED_EPOCHS))
    assert set(report.built) >= set(TRAINED_SPACES) and not report.skipped, report
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that uses :func:`trained_catalogue`, so that the quick run
    (``-m "not slow and not e2e"``) trains nothing."""
    for item in items:
        if "trained_catalogue" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)

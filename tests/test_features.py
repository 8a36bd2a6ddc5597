"""Tests for songsim.features: log-mel, the handcrafted baseline and the feature cache."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from songsim import features
from songsim.audio import file_fingerprint, load_clip
from songsim.config import HOP_LENGTH, N_MELS, SAMPLE_RATE_HZ
from songsim.errors import SongsimError
from songsim.features import (
    HANDCRAFTED_DIM,
    HANDCRAFTED_FEATURE_NAMES,
    HANDCRAFTED_GROUPS,
    STATISTICS,
    FeatureExtractionError,
    extract_features,
    feature_cache_dir,
    feature_cache_path,
    handcrafted_features,
    log_mel_spectrogram,
)


def _sine(freq_hz: float, duration_s: float = 6.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(duration_s * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _noise(duration_s: float = 6.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(duration_s * SAMPLE_RATE_HZ))).astype(np.float32)


def _feature(vector: np.ndarray, name: str) -> float:
    return float(vector[HANDCRAFTED_FEATURE_NAMES.index(name)])


# --- log-mel ---------------------------------------------------------------------------------


def test_log_mel_shape_of_30_s() -> None:
    mel = log_mel_spectrogram(_noise(duration_s=30.0))
    assert mel.shape == (N_MELS, 1292)
    assert mel.dtype == np.float32
    assert np.all(np.isfinite(mel))
    assert mel.max() - mel.min() <= 80.0 + 1e-3  # top_db


def test_log_mel_frames_follow_length() -> None:
    clip = _sine(440.0, duration_s=7.3)
    assert log_mel_spectrogram(clip).shape == (N_MELS, 1 + clip.size // HOP_LENGTH)


def test_log_mel_equals_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    clip = _noise(duration_s=5.0) + _sine(440.0, duration_s=5.0)
    reference = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=clip, sr=SAMPLE_RATE_HZ, n_fft=2048, hop_length=512, n_mels=N_MELS
        ),
        ref=1.0,
        top_db=80.0,
    )
    np.testing.assert_allclose(log_mel_spectrogram(clip), reference, atol=1e-3)


def test_log_mel_puts_a_tone_in_the_right_band() -> None:
    librosa = pytest.importorskip("librosa")
    mel = log_mel_spectrogram(_sine(1000.0))
    centres_hz = librosa.mel_frequencies(n_mels=N_MELS + 2, fmax=SAMPLE_RATE_HZ / 2)[1:-1]
    assert abs(centres_hz[np.argmax(mel.mean(axis=1))] - 1000.0) < 150.0


# --- handcrafted ---------------------------------------------------------------------------


def test_names_match_dimension() -> None:
    assert HANDCRAFTED_DIM == 518
    assert len(HANDCRAFTED_FEATURE_NAMES) == HANDCRAFTED_DIM
    assert len(set(HANDCRAFTED_FEATURE_NAMES)) == HANDCRAFTED_DIM
    assert sum(n for _, n in HANDCRAFTED_GROUPS) * len(STATISTICS) == HANDCRAFTED_DIM
    for name in ("zcr_mean", "mfcc03_std", "chroma_cqt12_kurtosis", "tonnetz06_skew",
                 "spectral_contrast07_median", "spectral_rolloff_max"):  # fmt: skip
        assert name in HANDCRAFTED_FEATURE_NAMES


def test_handcrafted_shape_finite_deterministic(tone_wav: Path) -> None:
    clip = load_clip(tone_wav)
    first = handcrafted_features(clip)
    assert first.shape == (HANDCRAFTED_DIM,)
    assert first.dtype == np.float32
    assert np.all(np.isfinite(first))
    assert np.array_equal(first, handcrafted_features(clip.copy()))


def test_handcrafted_differs_between_sounds() -> None:
    tone = handcrafted_features(_sine(440.0))
    noise = handcrafted_features(_noise())
    assert not np.allclose(tone, noise)
    # Noise is brighter and crosses zero far more often than a 440 Hz sine.
    assert _feature(noise, "spectral_centroid_mean") > 4 * _feature(tone, "spectral_centroid_mean")
    assert _feature(noise, "zcr_mean") > 10 * _feature(tone, "zcr_mean")
    assert _feature(tone, "zcr_mean") == pytest.approx(2 * 440.0 / SAMPLE_RATE_HZ, rel=0.05)


@pytest.mark.parametrize("group", ["chroma_stft", "chroma_cqt", "chroma_cens"])
def test_a440_chroma_peaks_at_a(group: str) -> None:
    vector = handcrafted_features(_sine(440.0))
    means = [_feature(vector, f"{group}{pitch:02d}_mean") for pitch in range(1, 13)]
    assert int(np.argmax(means)) == 9  # C=0 ... A=9 (named "...10_mean")


def test_statistics_of_constant_rows_are_zero_not_nan() -> None:
    rows = np.vstack([np.zeros(50), np.full(50, 3.0), np.arange(50.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no precision-loss warnings leak out
        stats = features._summarise(rows)
    assert stats.shape == (3, len(STATISTICS))
    assert np.all(np.isfinite(stats))
    skew, kurtosis = STATISTICS.index("skew"), STATISTICS.index("kurtosis")
    assert stats[0, skew] == stats[0, kurtosis] == stats[1, skew] == stats[1, kurtosis] == 0.0
    assert stats[1, STATISTICS.index("mean")] == 3.0
    assert stats[2, kurtosis] == pytest.approx(-1.2, abs=0.01)  # uniform: excess -1.2


# --- cache -----------------------------------------------------------------------------------


@pytest.fixture
def three_tones(make_tone) -> list[Path]:
    """Three different 6 s tones (different pitches and formats)."""
    return [
        make_tone("a.wav", f0_hz=220.0, duration_s=6.0),
        make_tone("b.flac", f0_hz=330.0, duration_s=6.0, noise=0.02),
        make_tone("c.ogg", f0_hz=147.0, duration_s=6.0),
    ]


class _CountingCompute:
    """Wraps features.compute_features and counts the calls (in-process runs only)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._original = features.compute_features
        monkeypatch.setattr(features, "compute_features", self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self._original(*args, **kwargs)


def test_extract_caches_and_skips(three_tones: list[Path], tmp_path: Path, monkeypatch) -> None:
    counter = _CountingCompute(monkeypatch)
    fingerprints = [file_fingerprint(p) for p in three_tones]
    cache = tmp_path / "cache"
    progress: list[tuple[int, int]] = []
    first = extract_features(
        three_tones, fingerprints, kind="handcrafted", cache_dir=cache, n_jobs=1,
        on_progress=lambda done, total: progress.append((done, total)),
    )  # fmt: skip
    assert first.shape == (3, HANDCRAFTED_DIM) and first.dtype == np.float32
    assert counter.calls == 3
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
    for path, row in zip(three_tones, first):  # row order = input order
        assert np.array_equal(row, handcrafted_features(load_clip(path)))
    cached = [feature_cache_path(cache, "handcrafted", fp) for fp in fingerprints]
    mtimes = [p.stat().st_mtime_ns for p in cached]

    progress.clear()
    second = extract_features(
        three_tones, fingerprints, kind="handcrafted", cache_dir=cache,
        on_progress=lambda done, total: progress.append((done, total)),
    )  # fmt: skip
    assert counter.calls == 3  # nothing recomputed
    assert progress == [(3, 3)]
    assert np.array_equal(first, second)
    assert [p.stat().st_mtime_ns for p in cached] == mtimes

    # Reordered input -> reordered rows, still nothing computed.
    third = extract_features(
        three_tones[::-1], fingerprints[::-1], kind="handcrafted", cache_dir=cache
    )
    assert np.array_equal(third, first[::-1]) and counter.calls == 3


def test_changed_file_is_recomputed(three_tones, make_tone, tmp_path: Path, monkeypatch) -> None:
    counter = _CountingCompute(monkeypatch)
    cache = tmp_path / "cache"
    fingerprints = [file_fingerprint(p) for p in three_tones]
    before = extract_features(three_tones, fingerprints, kind="handcrafted", cache_dir=cache)
    assert counter.calls == 3

    make_tone("a.wav", f0_hz=523.0, duration_s=6.0)  # overwrite a.wav with another pitch
    new_fingerprints = [file_fingerprint(p) for p in three_tones]
    assert new_fingerprints[0] != fingerprints[0] and new_fingerprints[1:] == fingerprints[1:]
    after = extract_features(three_tones, new_fingerprints, kind="handcrafted", cache_dir=cache)
    assert counter.calls == 4  # only the changed file
    assert not np.array_equal(after[0], before[0])
    assert np.array_equal(after[1:], before[1:])


def test_failures_are_reported_and_the_rest_cached(
    three_tones, corrupt_mp3: Path, silent_wav: Path, tmp_path: Path, monkeypatch
) -> None:
    cache = tmp_path / "cache"
    paths = [three_tones[0], corrupt_mp3, three_tones[1], silent_wav, three_tones[2]]
    fingerprints = [file_fingerprint(p) for p in paths]
    with pytest.raises(FeatureExtractionError) as caught:
        extract_features(paths, fingerprints, kind="handcrafted", cache_dir=cache, n_jobs=1)
    error = caught.value
    assert isinstance(error, SongsimError)
    assert list(error.failures) == [str(corrupt_mp3), str(silent_wav)]
    message = str(error)
    assert "2 of 5" in message
    assert corrupt_mp3.name in message and silent_wav.name in message
    assert "silent" in error.failures[str(silent_wav)]
    for path, fingerprint in zip(paths, fingerprints):
        stored = feature_cache_path(cache, "handcrafted", fingerprint).exists()
        assert stored == (path in three_tones), path

    counter = _CountingCompute(monkeypatch)
    good = extract_features(
        three_tones, [file_fingerprint(p) for p in three_tones], kind="handcrafted",
        cache_dir=cache,
    )  # fmt: skip
    assert good.shape == (3, HANDCRAFTED_DIM) and counter.calls == 0


def test_mel_kind(three_tones: list[Path], tmp_path: Path) -> None:
    fingerprints = [file_fingerprint(p) for p in three_tones]
    mels = extract_features(three_tones, fingerprints, kind="mel", cache_dir=tmp_path)
    assert isinstance(mels, list) and len(mels) == 3
    n_frames = 1 + 6 * SAMPLE_RATE_HZ // HOP_LENGTH
    for path, mel in zip(three_tones, mels):
        assert mel.shape == (N_MELS, n_frames) and mel.dtype == np.float32
        assert np.array_equal(mel, log_mel_spectrogram(load_clip(path)))
    mapped = extract_features(
        three_tones, fingerprints, kind="mel", cache_dir=tmp_path, mmap_mode="r"
    )
    assert isinstance(mapped[0], np.memmap) and np.array_equal(mapped[0], mels[0])
    # The two kinds live in different folders.
    assert feature_cache_dir(tmp_path, "mel") != feature_cache_dir(tmp_path, "handcrafted")
    assert (feature_cache_dir(tmp_path, "mel") / "settings.json").exists()


def test_duplicates_and_corrupt_cache_entries(three_tones, tmp_path: Path, monkeypatch) -> None:
    counter = _CountingCompute(monkeypatch)
    fp = file_fingerprint(three_tones[0])
    copy = three_tones[0].with_name("copy.wav")
    copy.write_bytes(three_tones[0].read_bytes())
    result = extract_features(
        [three_tones[0], copy], [fp, fp], kind="handcrafted", cache_dir=tmp_path
    )
    assert counter.calls == 1 and np.array_equal(result[0], result[1])

    # A damaged cache file (e.g. written by a buggy tool) is recomputed, not trusted.
    feature_cache_path(tmp_path, "handcrafted", fp).write_bytes(b"not a npy file")
    again = extract_features([copy], [fp], kind="handcrafted", cache_dir=tmp_path)
    assert counter.calls == 2 and np.array_equal(again[0], result[0])
    leftovers = [p.name for p in feature_cache_dir(tmp_path, "handcrafted").iterdir()]
    assert not [name for name in leftovers if name.endswith(".tmp")]


def test_empty_and_invalid_input(tmp_path: Path, tone_wav: Path) -> None:
    empty = extract_features([], [], kind="handcrafted", cache_dir=tmp_path)
    assert empty.shape == (0, HANDCRAFTED_DIM)
    assert extract_features([], [], kind="mel", cache_dir=tmp_path) == []
    with pytest.raises(ValueError, match="length"):
        extract_features([tone_wav], [], kind="handcrafted", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="fingerprint"):
        extract_features([tone_wav], ["../escape"], kind="handcrafted", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="kind"):
        extract_features(
            [tone_wav], ["abc"], kind="cqt", cache_dir=tmp_path  # type: ignore[arg-type]
        )


@pytest.mark.slow
def test_process_pool_gives_identical_results(make_tone, tmp_path: Path, monkeypatch) -> None:
    """Spawned workers (cold imports: tens of seconds on 2 cores) match the in-process run."""
    paths = [make_tone(f"t{i}.wav", f0_hz=110.0 * (i + 2), duration_s=5.0, noise=0.01 * i)
             for i in range(4)]  # fmt: skip
    fingerprints = [file_fingerprint(p) for p in paths]
    monkeypatch.setattr(features, "MIN_TRACKS_FOR_POOL", 2)
    for kind in ("handcrafted", "mel"):
        serial = extract_features(
            paths, fingerprints, kind=kind, cache_dir=tmp_path / "serial", n_jobs=1
        )
        progress: list[tuple[int, int]] = []
        pooled = extract_features(
            paths, fingerprints, kind=kind, cache_dir=tmp_path / "pool", n_jobs=2,
            on_progress=lambda done, total: progress.append((done, total)),
        )  # fmt: skip
        assert progress[0] == (0, 4) and progress[-1] == (4, 4)
        for a, b in zip(serial, pooled):
            assert np.array_equal(a, b), kind


@pytest.mark.slow
def test_process_pool_reports_failures(make_tone, corrupt_wav, tmp_path, monkeypatch) -> None:
    paths = [make_tone(f"t{i}.wav", f0_hz=200.0 + 50 * i, duration_s=5.0) for i in range(2)]
    paths.append(corrupt_wav)
    fingerprints = [file_fingerprint(p) for p in paths]
    monkeypatch.setattr(features, "MIN_TRACKS_FOR_POOL", 2)
    with pytest.raises(FeatureExtractionError) as caught:
        extract_features(paths, fingerprints, kind="mel", cache_dir=tmp_path, n_jobs=2)
    assert list(caught.value.failures) == [str(corrupt_wav)]
    assert all(feature_cache_path(tmp_path, "mel", fp).exists() for fp in fingerprints[:2])


def test_cache_files_are_plain_npy(three_tones, tmp_path: Path) -> None:
    fingerprints = [file_fingerprint(p) for p in three_tones]
    extract_features(three_tones[:1], fingerprints[:1], kind="handcrafted", cache_dir=tmp_path)
    stored = np.load(feature_cache_path(tmp_path, "handcrafted", fingerprints[0]))
    assert stored.shape == (HANDCRAFTED_DIM,)
    assert os.path.basename(feature_cache_path(tmp_path, "handcrafted", "abc")) == "abc.npy"


def test_interrupted_run_keeps_finished_tracks(three_tones, tmp_path: Path, monkeypatch) -> None:
    fingerprints = [file_fingerprint(p) for p in three_tones]

    def stop_after_first(done: int, total: int) -> None:
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(
            three_tones, fingerprints, kind="mel", cache_dir=tmp_path, on_progress=stop_after_first
        )
    stored = [feature_cache_path(tmp_path, "mel", fp).exists() for fp in fingerprints]
    assert stored == [True, False, False]
    counter = _CountingCompute(monkeypatch)
    extract_features(three_tones, fingerprints, kind="mel", cache_dir=tmp_path)
    assert counter.calls == 2


def test_unwritable_cache_is_a_clear_error(tone_wav: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    with pytest.raises(SongsimError, match="cannot write the feature cache"):
        extract_features(
            [tone_wav], [file_fingerprint(tone_wav)], kind="mel", cache_dir=blocker / "cache"
        )

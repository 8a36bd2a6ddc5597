"""The demo catalogue on disk: each track rendered, mastered for its era, labelled and written.

:func:`make_demo` plans the catalogue (:func:`songsim.demo.styles.plan_catalogue`), renders
every clip (30 s, mono, 22 050 Hz, OGG Vorbis or FLAC) in worker processes, and writes
``tracks.csv`` (:data:`COLUMNS`: genre, artist, album, year, emotion and Spotify-style audio
features) and the manifest ``demo.json``, which makes a rebuild of the same demo a no-op.

:func:`render_track`: each part of :func:`songsim.demo.composer.compose` is played by the
General-MIDI SoundFont player (:mod:`songsim.demo.synth`) on its own bus, levelled, lightly
processed (drive, side-chain pump), mixed into a room (exponentially decaying noise reverb)
and mastered for its year: band-limited, hissy and dynamic before the 1990s; full-band and
loudly limited after.

Labels: valence and arousal (DEAM 1-9) are *computed* from what was rendered (mode, tempo,
register, density, measured loudness, distortion) plus a little noise, and ``emotion`` is
their Thayer quadrant; the Spotify-style features follow from the plan the same way.

Determinism: the same ``seed`` gives identical ``tracks.csv`` and identical decoded samples,
whatever ``n_jobs``; every random draw comes from a generator seeded by (seed, genre, track).

Units: times in seconds (``_s``), sample rates in Hz (``_hz``), levels in dB re full scale.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import fft, signal

from songsim.config import CLIP_DURATION_S, SAMPLE_RATE_HZ
from songsim.demo.composer import compose
from songsim.demo.styles import (
    ACOUSTIC,
    DISTORTED,
    GENRES,
    REGULARITY,
    VOICE_LIKE,
    Style,
    TrackSpec,
    plan_catalogue,
    style_of,
)
from songsim.demo.synth import SoundFont
from songsim.errors import SongsimError
from songsim.files import atomic_write, csv_safe, read_json, write_json

GENERATOR_VERSION = 1  # bump whenever the output changes: a cached demo is then rebuilt
TRACKS_CSV = "tracks.csv"
MANIFEST_JSON = "demo.json"
#: Clip formats: extension -> (soundfile container, subtype).
AUDIO_FORMATS = {"ogg": ("OGG", "VORBIS"), "flac": ("FLAC", "PCM_16")}
COLUMNS = (
    "track_id", "path", "title", "artist", "album", "year", "genre", "valence", "arousal",
    "emotion", "danceability", "energy", "loudness", "mode", "speechiness", "acousticness",
    "instrumentalness", "liveness", "tempo", "time_signature",
)
EMOTION_THRESHOLD = 5.0  # DEAM midpoint: happy V>5,A>5; calm V>5,A<=5; angry V<=5,A>5; sad

ProgressFn = Callable[[int, int, str], None]


# ============================================================================================
# rendering: buses -> mix -> room -> era master

_REFERENCE_RMS = 0.1  # bus level 0 dB in the mix, before mastering
_REVERB_DECIMATION = 4  # the reverb tail is computed at a quarter of the sample rate
PEAK_CEILING = 0.84  # -1.5 dBFS: the master's peak limit, headroom for the codec's overshoot


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.dot(x, x) / max(len(x), 1)))


def _reverb(send: np.ndarray, *, rt60_s: float, rng: np.random.Generator,
            sr_hz: int) -> np.ndarray:
    """A room: convolution with exponentially decaying, darkened noise.

    The tail is computed at a quarter of the sample rate (the room absorbs the top octaves
    anyway; the IR itself is low-passed), which makes the FFT convolution four times cheaper.

    Parameters
    ----------
    send : np.ndarray [shape=(n,), dtype=float32]
        What goes into the room.
    rt60_s : float
        Time for the tail to decay by 60 dB, in seconds (the IR is cut at 2.5 s).

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
        The wet signal, at about the energy of ``send``.
    """
    factor = _REVERB_DECIMATION
    low_hz = sr_hz / factor
    n_ir = int(min(rt60_s, 2.5) * low_hz)
    t = np.arange(n_ir, dtype=np.float32) / np.float32(low_hz)
    noise = rng.standard_normal(n_ir, dtype=np.float32)
    ir = signal.lfilter([0.7], [1.0, -0.3], noise) * np.exp(np.float32(-6.91 / rt60_s) * t)
    ir = np.concatenate([np.zeros(int(0.015 * low_hz)), ir / np.sqrt(np.sum(ir**2))])
    n_low = -(-len(send) // factor)
    padded = np.zeros((n_low + 1) * factor, dtype=np.float32)
    padded[: len(send)] = send
    decimated = sum(padded[k::factor] for k in range(factor)) / np.float32(factor)
    size = fft.next_fast_len(n_low + len(ir) - 1, real=True)
    wet = fft.irfft(fft.rfft(decimated, size) * fft.rfft(ir.astype(np.float32), size),
                    size)[: n_low + 1].astype(np.float32)
    # back to the full rate: linear interpolation between the decimated samples
    ramp = np.arange(factor, dtype=np.float32) / np.float32(factor)
    full = wet[:-1, None] + (wet[1:] - wet[:-1])[:, None] * ramp[None, :]
    return full.ravel()[: len(send)]


def _era(year: int) -> tuple[float, float]:
    """How old a recording sounds: (age 0-1, loudness-war modernity 0-1)."""
    age = float(np.clip((1995 - year) / 40.0, 0.0, 1.0))
    return age, float(np.clip((year - 1975) / 35.0, 0.0, 1.0))


def render_track(spec: TrackSpec, *, soundfont: SoundFont | None = None,
                 sr_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Render one track to a mastered mono clip.

    Parameters
    ----------
    spec : TrackSpec
        The track (see :func:`plan_catalogue`).
    soundfont : SoundFont, optional, keyword-only
        Default: :meth:`SoundFont.load` (the bundled General-MIDI SoundFont).
    sr_hz : int, keyword-only
        Output sample rate in Hz.

    Returns
    -------
    np.ndarray [shape=(round(CLIP_DURATION_S * sr_hz),), dtype=float32]
        Peak at most :data:`PEAK_CEILING` (-1.5 dBFS).
    """
    soundfont = soundfont or SoundFont.load()
    style = style_of(spec)
    rng = np.random.default_rng([spec.seed, spec.genre_index, spec.number, 5])
    n = int(round(CLIP_DURATION_S * sr_hz))
    mix = np.zeros(n, dtype=np.float32)
    send = np.zeros(n, dtype=np.float32)
    pump = None
    if style.pump:  # side-chain ducking on every beat (the kick)
        beat_s = 60.0 / spec.tempo_bpm
        since_beat = np.mod(np.arange(n, dtype=np.float32) / np.float32(sr_hz), beat_s)
        pump = 1.0 - np.float32(style.pump) * np.exp(since_beat * np.float32(-1.0 / 0.08))
    levels_db = np.add(style.mix, spec.bus_offsets_db)
    for (bus, notes), level_db in zip(compose(spec).items(), levels_db):
        x = soundfont.render(notes, duration_s=CLIP_DURATION_S, sr_hz=sr_hz)
        rms = _rms(x)
        if rms == 0.0:
            continue
        program = {"comp": spec.comp_program, "lead": spec.lead_program}.get(bus)
        if style.drive and program in DISTORTED:
            x = np.tanh(np.float32(style.drive * 0.5 / rms) * x)
            rms = _rms(x)
        if pump is not None and bus in ("bass", "comp", "pad"):
            x *= pump
        x *= np.float32(_REFERENCE_RMS * 10.0 ** (level_db / 20.0) / rms)
        mix += x
        send += np.float32(0.4) * x if bus in ("drums", "bass") else x
    mix += np.float32(spec.reverb_send) * _reverb(send, rt60_s=spec.reverb_rt60_s, rng=rng,
                                                  sr_hz=sr_hz)
    return _master(mix, spec, style, rng, sr_hz)


def _master(mix: np.ndarray, spec: TrackSpec, style: Style, rng: np.random.Generator,
            sr_hz: int) -> np.ndarray:
    """Master the mix for its album and year; fade the clip's edges.

    The chain: level (modern masters louder), the album's shelving EQ, a soft limiter (which
    only loud modern masters hit hard), tape hiss and the band-limited, bass-light medium of
    old recordings, and, for lo-fi artists, a dull sampler filter and vinyl crackle.

    Parameters
    ----------
    mix : np.ndarray [shape=(n,), dtype=float32]

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
        Peak at most :data:`PEAK_CEILING`.
    """
    age, modern = _era(spec.year)
    target_db = -21.0 + 12.0 * modern + spec.level_db
    y = mix * np.float32(10.0 ** (target_db / 20.0) / max(_rms(mix), 1e-9))
    production = np.vstack([_shelf(150.0, spec.eq_low_db, high=False, sr_hz=sr_hz),
                            _shelf(3000.0, spec.eq_high_db, high=True, sr_hz=sr_hz)])
    y = signal.sosfilt(production, y).astype(np.float32)
    ceiling = np.float32(PEAK_CEILING)
    y = ceiling * np.tanh(y / ceiling)
    medium = []
    if age > 0:
        y += np.float32(10.0 ** ((-75.0 + 27.0 * age) / 20.0)) * rng.standard_normal(
            len(y), dtype=np.float32)
        band = [30.0 + 90.0 * age, 11000.0 - 7000.0 * age]
        if band[1] < 0.95 * sr_hz / 2:
            medium.append(signal.butter(2, band, "bandpass", fs=sr_hz, output="sos"))
        else:
            medium.append(signal.butter(2, band[0], "highpass", fs=sr_hz, output="sos"))
    if style.lofi:
        medium.append(signal.butter(4, 4200.0, "lowpass", fs=sr_hz, output="sos"))
    if medium:
        y = signal.sosfilt(np.vstack(medium), y).astype(np.float32)
    if style.lofi:
        crackle = np.flatnonzero(rng.random(len(y), dtype=np.float32) < 4e-4)
        y[crackle] += rng.uniform(-0.1, 0.1, len(crackle)).astype(np.float32)
    fade_in, fade_out = int(0.01 * sr_hz), int(1.0 * sr_hz)
    y[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
    y[-fade_out:] *= np.linspace(1.0, 0.0, fade_out, dtype=np.float32) ** 2
    peak = float(np.max(np.abs(y)))
    if peak > PEAK_CEILING:
        y *= np.float32(PEAK_CEILING / peak)
    return y


def _shelf(corner_hz: float, gain_db: float, *, high: bool, sr_hz: int) -> np.ndarray:
    """A shelving biquad (RBJ Audio EQ Cookbook, slope 1) as one second-order section.

    Returns
    -------
    np.ndarray [shape=(1, 6)]
        ``[b0, b1, b2, 1, a1, a2]`` for :func:`scipy.signal.sosfilt`.
    """
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * corner_hz / sr_hz
    cos_w0, two_sqrt_a_alpha = math.cos(w0), math.sqrt(a) * math.sin(w0) * math.sqrt(2.0)
    sign = 1.0 if high else -1.0  # the high shelf mirrors the low shelf's cosine terms
    b = [a * ((a + 1) + sign * (a - 1) * cos_w0 + two_sqrt_a_alpha),
         -2.0 * sign * a * ((a - 1) + sign * (a + 1) * cos_w0),
         a * ((a + 1) + sign * (a - 1) * cos_w0 - two_sqrt_a_alpha)]
    den = [(a + 1) - sign * (a - 1) * cos_w0 + two_sqrt_a_alpha,
           2.0 * sign * ((a - 1) - sign * (a + 1) * cos_w0),
           (a + 1) - sign * (a - 1) * cos_w0 - two_sqrt_a_alpha]
    return np.array([b + den]) / den[0]


# ============================================================================================
# labels: emotion and Spotify-style features, from the plan and the measured loudness


def _labels(spec: TrackSpec, loudness_db: float) -> dict[str, object]:
    """Valence/arousal (DEAM 1-9), Thayer quadrant and Spotify-style features of a track.

    Valence rises with major mode, tempo and a higher melody, and falls with distortion;
    arousal rises with tempo, density, loudness and distortion. Each gets N(0, 0.35) noise.
    """
    style = style_of(spec)
    rng = np.random.default_rng([spec.seed, spec.genre_index, spec.number, 2])
    pulse_bpm = spec.tempo_bpm / 2 if style.halftime else spec.tempo_bpm
    tempo_z = float(np.clip((pulse_bpm - 110.0) / 40.0, -1.5, 1.5))
    programs = [spec.bass_program, spec.comp_program, spec.lead_program]
    if spec.pad_program:
        programs.append(spec.pad_program)
    distorted = float(any(p in DISTORTED for p in programs))
    voice = float(spec.lead_program in VOICE_LIKE or spec.pad_program in VOICE_LIKE)
    valence = (5.0 + (1.5 if spec.major else -1.5) + 0.5 * tempo_z + 0.12 * spec.register_shift
               - 0.5 * distorted + rng.normal(0.0, 0.35))
    arousal = (5.0 + 1.0 * tempo_z + 1.5 * (2.0 * spec.density - 1.0)
               + 0.1 * (loudness_db + 14.0) + 0.6 * distorted
               - 0.4 * (spec.drums == "none") + rng.normal(0.0, 0.35))
    valence = round(float(np.clip(valence, 1.0, 9.0)), 2)
    arousal = round(float(np.clip(arousal, 1.0, 9.0)), 2)
    if spec.drums != "none":
        programs.append(spec.kit)
    acoustic = float(np.mean([ACOUSTIC.get(p, 0.0) for p in programs]))
    danceability = (0.15 + 0.55 * REGULARITY[spec.drums]
                    + 0.25 * (1.0 - min(abs(pulse_bpm - 118.0) / 50.0, 1.0))
                    - 0.1 * (spec.meter != 4) - 0.005 * style.jitter_ms)
    energy = (0.35 * spec.density + 0.25 * np.clip((pulse_bpm - 60.0) / 120.0, 0.0, 1.0)
              + 0.25 * np.clip((loudness_db + 30.0) / 25.0, 0.0, 1.0) + 0.15 * distorted)
    return {
        "valence": valence,
        "arousal": arousal,
        "emotion": _thayer(valence, arousal),
        "danceability": round(float(np.clip(danceability, 0.0, 1.0)), 3),
        "energy": round(float(np.clip(energy, 0.0, 1.0)), 3),
        "loudness": round(loudness_db, 2),
        "mode": int(spec.major),
        "speechiness": round(0.03 + 0.05 * voice + 0.02 * (spec.drums in ("boombap", "trap"))
                             + float(rng.uniform(0.0, 0.015)), 3),
        "acousticness": round(0.02 + 0.96 * acoustic, 3),
        "instrumentalness": round(0.9 - 0.3 * voice + float(rng.uniform(0.0, 0.08)), 3),
        "liveness": round(float(np.clip(0.05 + 0.7 * spec.reverb_send
                                        * spec.reverb_rt60_s / (spec.reverb_rt60_s + 1.0),
                                        0.0, 1.0)), 3),
        "tempo": spec.tempo_bpm,
        "time_signature": spec.meter,
    }


def _thayer(valence: float, arousal: float) -> str:
    """Thayer quadrant with threshold 5 (as :func:`songsim.catalogue.thayer_quadrant`)."""
    if valence > EMOTION_THRESHOLD:
        return "happy" if arousal > EMOTION_THRESHOLD else "calm"
    return "angry" if arousal > EMOTION_THRESHOLD else "sad"


# ============================================================================================
# the catalogue on disk


def _audio_path(spec: TrackSpec, audio_format: str) -> str:
    """The clip's path relative to the catalogue folder."""
    return f"audio/{spec.genre}/{spec.track_id}.{audio_format}"


def _render_to_file(spec: TrackSpec, out_dir: str, audio_format: str) -> tuple[str, float]:
    """Worker: render one clip and write it; return (track id, loudness in dB re full scale).

    A lossy codec can overshoot the master's peak by a decibel or so: an OGG clip is decoded
    again and, should its peak exceed full scale, encoded again a little quieter.
    """
    clip = render_track(spec)
    container, subtype = AUDIO_FORMATS[audio_format]
    while True:
        encoded = io.BytesIO()
        sf.write(encoded, clip, SAMPLE_RATE_HZ, format=container, subtype=subtype)
        if subtype != "VORBIS":
            break
        encoded.seek(0)
        peak = float(np.max(np.abs(sf.read(encoded, dtype="float32")[0])))
        if peak <= 1.0:
            break
        clip = clip * np.float32(0.98 / peak)
    with atomic_write(Path(out_dir) / _audio_path(spec, audio_format)) as handle:
        handle.write(encoded.getvalue())
    return spec.track_id, 20.0 * math.log10(max(_rms(clip), 1e-6))


def _manifest(seed: int, tracks_per_genre: int, audio_format: str) -> dict[str, object]:
    return {"generator": "songsim.demo", "version": GENERATOR_VERSION, "seed": seed,
            "tracks_per_genre": tracks_per_genre, "audio_format": audio_format,
            "genres": list(GENRES), "sample_rate_hz": SAMPLE_RATE_HZ,
            "clip_duration_s": CLIP_DURATION_S}


def _is_built(out_dir: Path, manifest: dict[str, object], specs: list[TrackSpec]) -> bool:
    audio_format = str(manifest["audio_format"])
    return (read_json(out_dir / MANIFEST_JSON) == manifest
            and (out_dir / TRACKS_CSV).is_file()
            and all((out_dir / _audio_path(spec, audio_format)).is_file() for spec in specs))


def make_demo(out_dir: Path | str, *, seed: int = 0, tracks_per_genre: int = 30,
              on_progress: ProgressFn | None = None, n_jobs: int | None = None,
              audio_format: str = "ogg") -> Path:
    """Write the demo catalogue: clips under ``out_dir/audio/`` and ``out_dir/tracks.csv``.

    Idempotent: when ``out_dir`` already holds a complete demo of this generator version,
    seed, size and format (``demo.json`` says so), nothing is rendered again.

    Parameters
    ----------
    out_dir : Path or str
        The catalogue folder (created if missing).
    seed : int, keyword-only
        Seed of every random choice; the same seed gives identical ``tracks.csv`` and
        identical decoded audio, whatever ``n_jobs``.
    tracks_per_genre : int, keyword-only
        Clips per genre (``len(GENRES)`` genres; 30 gives 240 clips).
    on_progress : callable, optional, keyword-only
        ``on_progress(done, total, message)``, called in the calling process as clips finish
        (and once with ``done == total`` when the demo was already built).
    n_jobs : int, optional, keyword-only
        Worker processes; default every available core. ``1`` renders in this process.
    audio_format : {"ogg", "flac"}, keyword-only
        ``"ogg"`` (Vorbis, about 5x smaller) or ``"flac"`` (lossless; encodes about ten times
        faster, which matters on a small machine: Vorbis encoding is most of the build time).

    Returns
    -------
    Path
        ``out_dir/tracks.csv``. Columns: :data:`COLUMNS`. ``path`` is relative to ``out_dir``
        (``audio/<genre>/<track_id>.<audio_format>``); clips are mono, ``SAMPLE_RATE_HZ`` Hz,
        ``CLIP_DURATION_S`` s.

    Raises
    ------
    SongsimError
        If ``tracks_per_genre < 1`` or ``audio_format`` is unknown.
    """
    if audio_format not in AUDIO_FORMATS:
        raise SongsimError(f"demo: audio_format must be one of {', '.join(AUDIO_FORMATS)}, "
                           f"got {audio_format!r}.")
    out_dir = Path(out_dir).expanduser().resolve()
    specs = plan_catalogue(seed=seed, tracks_per_genre=tracks_per_genre)
    manifest = _manifest(seed, tracks_per_genre, audio_format)
    csv_path = out_dir / TRACKS_CSV
    total = len(specs)
    if _is_built(out_dir, manifest, specs):
        if on_progress is not None:
            on_progress(total, total, "demo catalogue already built")
        return csv_path
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_JSON).unlink(missing_ok=True)  # a crash below leaves no stale claim
    loudness = dict(_render_all(specs, out_dir, audio_format=audio_format,
                                on_progress=on_progress, n_jobs=n_jobs))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for spec in specs:
        row = {"track_id": spec.track_id, "path": _audio_path(spec, audio_format),
               "title": spec.title, "artist": spec.artist, "album": spec.album,
               "year": spec.year, "genre": spec.genre, **_labels(spec, loudness[spec.track_id])}
        writer.writerow({column: csv_safe(value) for column, value in row.items()})
    with atomic_write(csv_path) as handle:
        handle.write(table.getvalue().encode("utf-8"))
    write_json(out_dir / MANIFEST_JSON, manifest)  # last: it vouches for everything above
    return csv_path


def _render_all(specs: list[TrackSpec], out_dir: Path, *, audio_format: str,
                on_progress: ProgressFn | None,
                n_jobs: int | None) -> Iterable[tuple[str, float]]:
    """Render every clip (in worker processes unless one job), yielding results as they come.

    The workers are joblib's reusable loky processes (started by fork+exec, so safe inside a
    threaded host such as Streamlit, and shared with :mod:`songsim.features`); results do not
    depend on which worker renders which clip.
    """
    total = len(specs)
    workers = max(1, min(n_jobs or _available_cores(), total))
    if workers == 1:
        results = (_render_to_file(spec, str(out_dir), audio_format) for spec in specs)
    else:
        from joblib import Parallel, delayed  # imported here: the workers never need it

        results = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")(
            delayed(_render_to_file)(spec, str(out_dir), audio_format) for spec in specs)
    for done, result in enumerate(results, start=1):
        if on_progress is not None:
            on_progress(done, total, f"rendered {result[0]}")
        yield result


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1

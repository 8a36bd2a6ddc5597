"""Log-mel spectrograms, the handcrafted librosa baseline, and their on-disk cache.

All features are computed from a clip as returned by :func:`songsim.audio.load_clip` (mono,
float32, :data:`~songsim.config.SAMPLE_RATE_HZ`, the middle
:data:`~songsim.config.CLIP_DURATION_S` seconds) through **one** short-time Fourier transform:
``n_fft = N_FFT`` (2048 samples, 93 ms), ``hop = HOP_LENGTH`` (512 samples, 23 ms), a periodic
Hann window, centred frames with zero padding -- librosa's defaults, computed here with
``scipy.fft`` (equal to ``librosa.stft`` to float32 rounding, about twice as fast). A clip of
``n`` samples has ``1 + n // HOP_LENGTH`` frames (30 s -> 1 292).

Units: frequencies in hertz, levels in dB; ``(n_mels, n_frames)`` arrays have frequency on
the first axis and time on the second, like librosa.

These feature kinds are cached per track by :func:`extract_features`:

``"mel"``
    :func:`log_mel_spectrogram`, the input of the CNNs.
``"handcrafted"``
    :func:`handcrafted_features`, the librosa baseline of the FMA dataset (Defferrard et al.,
    "FMA: A Dataset for Music Analysis", ISMIR 2017): 74 per-frame coefficients, each
    summarised by 7 statistics, ``D = 518`` values named by :data:`HANDCRAFTED_FEATURE_NAMES`.
``"chroma"``
    :func:`chromagram`, the input of the chroma LSTM: 12 pitch classes per frame of the
    shared STFT.
``"musicnn"``
    :func:`musicnn_features`: the pretrained MusiCNN tagger (``MSD_musicnn``, torch port in
    :mod:`songsim.models.musicnn`) on the clip resampled to 16 kHz -- its 200-d penultimate
    layer and its 50 MSD tag probabilities, each the mean over the clip's 3 s patches
    (``MUSICNN_DIM = 250`` values). Computed with one torch thread, like the BLAS pin below,
    so every process gives the same numbers; on the GPU when there is one.
``"musly"``
    :func:`musly_features`: Musly's ``timbre`` model of the excerpt Musly's own command line
    analyses (30 s, centred but from 48 s at the latest: :data:`CLIP_OPTIONS`), as
    ``pymusly``'s ``serialize_track`` writes it (``MUSLY_DIM = 351`` values, native float32;
    :mod:`songsim.models.musly`).

Every kind but ``"musly"`` decodes the middle ``CLIP_DURATION_S`` seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.fft
import scipy.stats

from songsim.audio import load_clip
from songsim.files import atomic_write
from songsim.config import CLIP_DURATION_S, HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE_HZ
from songsim.errors import FeatureExtractionError, SongsimError

__all__ = [
    "FEATURE_KINDS",
    "FEATURE_SETTINGS_VERSION",
    "FeatureExtractionError",
    "HANDCRAFTED_DIM",
    "HANDCRAFTED_FEATURE_NAMES",
    "HANDCRAFTED_GROUPS",
    "N_CHROMA",
    "STATISTICS",
    "chromagram",
    "compute_features",
    "extract_features",
    "feature_backend",
    "feature_cache_dir",
    "feature_cache_path",
    "handcrafted_features",
    "log_mel_spectrogram",
    "musicnn_features",
    "musly_features",
]

FeatureKind = Literal["handcrafted", "mel", "chroma", "musicnn", "musly"]
FEATURE_KINDS: tuple[str, ...] = ("handcrafted", "mel", "chroma", "musicnn", "musly")
#: the kinds that are one vector per track, returned stacked (n_tracks, dim) by extract_features
VECTOR_KINDS: tuple[str, ...] = ("handcrafted", "musicnn", "musly")

# Bump when the feature code changes in a way that changes its numbers: every cached file of
# the old version is then ignored (it lives in a folder named by a hash of the settings).
FEATURE_SETTINGS_VERSION = 1

# --- log-mel settings (the CNN input) -------------------------------------------------------
MEL_FMIN_HZ = 0.0  # lowest mel band edge
MEL_TOP_DB = 80.0  # dynamic range kept below each clip's loudest bin, in dB
_POWER_AMIN = 1e-10  # power floor before the log (-100 dB)

# --- handcrafted settings -------------------------------------------------------------------
CQT_BINS_PER_OCTAVE = 12  # one CQT bin per semitone
CQT_N_OCTAVES = 7  # C1 (32.7 Hz) .. B7 (3 951 Hz): 84 bins
CQT_FMIN_HZ = 32.703195662574764  # C1
MFCC_N_MELS = 128  # mel bands under the MFCCs (librosa's default)
N_MFCC = 20
CONTRAST_N_BANDS = 6  # spectral contrast: 6 octave bands + 1 valley row = 7 rows
N_CHROMA = 12  # pitch classes of the "chroma" kind, C first

STATISTICS: tuple[str, ...] = ("mean", "median", "min", "max", "std", "skew", "kurtosis")
"""How each per-frame coefficient is summarised, in output order. ``skew`` and ``kurtosis``
are :func:`scipy.stats.skew` and :func:`scipy.stats.kurtosis` (Fisher, i.e. excess kurtosis,
biased estimators, as in FMA); both are 0 for a constant row."""

HANDCRAFTED_GROUPS: tuple[tuple[str, int], ...] = (
    ("zcr", 1),  # zero-crossing rate, fraction of sample pairs per frame
    ("chroma_stft", 12),  # chroma from the STFT power, 01 = C ... 10 = A ... 12 = B
    ("chroma_cqt", 12),  # chroma from the 84-bin CQT, same pitch order
    ("chroma_cens", 12),  # CENS (smoothed, quantised chroma) from the same CQT
    ("tonnetz", 6),  # tonal centroids of the CENS chroma: fifths, minor 3rds, major 3rds (x, y)
    ("rms", 1),  # frame RMS from the magnitude spectrum (full-scale units)
    ("spectral_centroid", 1),  # Hz
    ("spectral_bandwidth", 1),  # Hz, 2nd-order spread around the centroid
    ("spectral_contrast", 7),  # dB, 6 octave bands from 200 Hz + the top band
    ("spectral_rolloff", 1),  # Hz below which 85 % of the energy lies
    ("mfcc", N_MFCC),  # 01 = c0 (overall level) ... 20, from a 128-band mel in dB
)
"""The per-frame feature groups, in output order, with their number of coefficients."""


def _feature_names() -> tuple[str, ...]:
    names = []
    for group, n_rows in HANDCRAFTED_GROUPS:
        for row in range(n_rows):
            base = f"{group}{row + 1:02d}" if n_rows > 1 else group
            names.extend(f"{base}_{stat}" for stat in STATISTICS)
    return tuple(names)


HANDCRAFTED_FEATURE_NAMES: tuple[str, ...] = _feature_names()
"""Name of every entry of :func:`handcrafted_features`, e.g. ``"mfcc03_std"`` or ``"zcr_mean"``:
group, 1-based coefficient number (omitted for single-row groups), statistic. Ordered by group
(:data:`HANDCRAFTED_GROUPS`), then coefficient, then statistic (:data:`STATISTICS`)."""

HANDCRAFTED_DIM = len(HANDCRAFTED_FEATURE_NAMES)  # D = 518

# --- musicnn ----------------------------------------------------------------------------------
MUSICNN_EMBEDDING_DIM = 200  # the penultimate layer of MSD_musicnn
MUSICNN_N_TAGS = 50  # MSD tag probabilities, songsim.models.musicnn.msd_tags() order
MUSICNN_DIM = MUSICNN_EMBEDDING_DIM + MUSICNN_N_TAGS  # one cached "musicnn" vector: embedding, then tags
# Bump when the port or its input pipeline changes its numbers (songsim/models/musicnn.py).
MUSICNN_PORT_VERSION = 1

# --- musly ------------------------------------------------------------------------------------
MUSLY_DIM = 351  # a serialised Musly timbre track (songsim.models.musly.TRACK_DIM)
MUSLY_EXCERPT_MAX_START_S = 48.0  # musly -a: 30 s centred, starting at 48 s at the latest
#: how each kind's excerpt is decoded (songsim.audio.load_clip keywords); the default for the others
CLIP_OPTIONS: dict[str, dict[str, object]] = {
    "musly": {"duration_s": CLIP_DURATION_S, "position": "middle", "max_start_s": MUSLY_EXCERPT_MAX_START_S},
}
_DEFAULT_CLIP_OPTIONS: dict[str, object] = {"duration_s": CLIP_DURATION_S, "position": "middle"}
_DIMS = {"handcrafted": HANDCRAFTED_DIM, "musicnn": MUSICNN_DIM, "musly": MUSLY_DIM}  # the vector kinds' sizes

# Pool workers cost seconds to start (imports, numba caches), so small batches run in-process.
MIN_TRACKS_FOR_POOL = 8

#: seconds to wait for a Dask scheduler to answer (and for it to have a worker) before giving up
DASK_CONNECT_TIMEOUT_S = 5.0

_FINGERPRINT_RE = re.compile(r"^[0-9A-Za-z_-]{1,128}$")


# ============================================================================================
# determinism

_BLAS_LOCK = threading.RLock()
_blas_controller = None  # threadpoolctl.ThreadpoolController, created on first use


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Run the block with one BLAS thread (numpy's and scipy's OpenBLAS).

    OpenBLAS rounds float32 matrix products differently with 1 and with n threads, so the
    same clip would give features differing in the 7th digit in a pool worker and in the
    app. Pinning one thread makes every feature bit-identical whatever ``n_jobs`` (and is
    no slower here: the products are small). The limit is process-wide, so computations in
    one process are serialised by a lock; other threads' BLAS calls meanwhile run on one
    thread too.
    """
    global _blas_controller
    with _BLAS_LOCK:
        try:
            if _blas_controller is None:
                import librosa  # noqa: F401 - load every BLAS the features use first
                import scipy.linalg  # noqa: F401
                from threadpoolctl import ThreadpoolController

                _blas_controller = ThreadpoolController()
            limiter = _blas_controller.limit(limits=1, user_api="blas")
        except Exception:  # noqa: BLE001 - threadpoolctl missing or failing: run as is
            limiter = None
        if limiter is None:
            yield
            return
        with limiter:
            yield


# ============================================================================================
# spectra


@lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window (librosa's ``get_window("hann", n_fft, fftbins=True)``)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def _power_spectrogram(clip: np.ndarray) -> np.ndarray:
    """|STFT|^2, shape (1 + N_FFT // 2, n_frames) float32, centred zero-padded frames."""
    clip = np.asarray(clip, dtype=np.float32)
    if clip.ndim != 1 or clip.size == 0:
        raise ValueError(f"clip must be a non-empty 1-D array, got shape {clip.shape}")
    padded = np.pad(clip, N_FFT // 2, mode="constant")
    if padded.size < N_FFT:  # a clip shorter than one frame
        padded = np.pad(padded, (0, N_FFT - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]
    spectrum = scipy.fft.rfft(frames * _hann(N_FFT), axis=1)
    power = np.square(spectrum.real) + np.square(spectrum.imag)
    return np.ascontiguousarray(power.T, dtype=np.float32)


@lru_cache(maxsize=8)
def _mel_basis(sr_hz: int, n_mels: int) -> np.ndarray:
    import librosa  # deferred: librosa is slow to import and not needed to read the cache

    return librosa.filters.mel(
        sr=sr_hz, n_fft=N_FFT, n_mels=n_mels, fmin=MEL_FMIN_HZ, dtype=np.float32
    )


def _power_to_db(power: np.ndarray, *, top_db: float | None) -> np.ndarray:
    """``librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=top_db)``."""
    db = 10.0 * np.log10(np.maximum(power, _POWER_AMIN))
    if top_db is not None:
        db = np.maximum(db, db.max() - top_db)
    return db.astype(np.float32, copy=False)


def log_mel_spectrogram(clip: np.ndarray, *, sr_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Log-power mel spectrogram, the input of the CNNs.

    ``N_MELS`` (64) Slaney-normalised mel bands from 0 Hz to ``sr_hz / 2`` over the power of
    the shared STFT (``N_FFT`` = 2048, ``HOP_LENGTH`` = 512, Hann, centred), then
    ``10 log10(max(power, 1e-10))`` clipped to 80 dB below the clip's maximum. Equal to
    ``librosa.power_to_db(librosa.feature.melspectrogram(y=clip, sr=sr_hz, n_fft=2048,
    hop_length=512, n_mels=64), ref=1.0, top_db=80)`` to about 1e-5 dB, about twice as fast.

    Parameters
    ----------
    clip : np.ndarray [shape=(n_samples,)]
        Mono samples in full-scale units, e.g. from :func:`songsim.audio.load_clip`.
    sr_hz : int
        Sample rate of ``clip`` in hertz.

    Returns
    -------
    np.ndarray [shape=(N_MELS, n_frames), dtype=float32]
        Levels in dB relative to full-scale power (0 dB = a full-scale bin);
        ``n_frames = 1 + n_samples // HOP_LENGTH`` (30 s at 22 050 Hz -> 1 292).
    """
    with _single_threaded_blas():
        power = _power_spectrogram(clip)
        return _power_to_db(_mel_basis(int(sr_hz), N_MELS) @ power, top_db=MEL_TOP_DB)


# ============================================================================================
# handcrafted baseline


def _handcrafted_frames(clip: np.ndarray, sr_hz: int) -> dict[str, np.ndarray]:
    """Per-frame coefficients of every group in :data:`HANDCRAFTED_GROUPS`.

    One STFT (magnitude and power) feeds chroma_stft, RMS, centroid, bandwidth (reusing the
    centroid), contrast, rolloff and the MFCCs (from a 128-band mel of the same power); one
    84-bin CQT with ``tuning=0`` feeds chroma_cqt, chroma_cens and, through CENS, the tonnetz.
    Tuning estimation is skipped everywhere (``tuning=0``: A = 440 Hz), which makes the
    features faster and independent of a noisy estimate.
    """
    import librosa  # deferred: see _mel_basis

    clip = np.asarray(clip, dtype=np.float32)
    power = _power_spectrogram(clip)
    magnitude = np.sqrt(power)
    cqt = np.abs(
        librosa.cqt(
            clip,
            sr=sr_hz,
            hop_length=HOP_LENGTH,
            fmin=CQT_FMIN_HZ,
            n_bins=CQT_BINS_PER_OCTAVE * CQT_N_OCTAVES,
            bins_per_octave=CQT_BINS_PER_OCTAVE,
            tuning=0.0,
        )
    )
    cqt_chroma = dict(
        C=cqt, sr=sr_hz, hop_length=HOP_LENGTH, fmin=CQT_FMIN_HZ, n_chroma=12,
        n_octaves=CQT_N_OCTAVES, bins_per_octave=CQT_BINS_PER_OCTAVE,
    )  # fmt: skip
    chroma_cens = librosa.feature.chroma_cens(**cqt_chroma)
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=sr_hz, n_fft=N_FFT)
    mfcc_mel = _mel_basis(int(sr_hz), MFCC_N_MELS) @ power
    frames = {
        "zcr": librosa.feature.zero_crossing_rate(
            clip, frame_length=N_FFT, hop_length=HOP_LENGTH, center=True
        ),
        "chroma_stft": librosa.feature.chroma_stft(
            S=power, sr=sr_hz, n_fft=N_FFT, hop_length=HOP_LENGTH, tuning=0.0, n_chroma=12
        ),
        "chroma_cqt": librosa.feature.chroma_cqt(**cqt_chroma),
        "chroma_cens": chroma_cens,
        "tonnetz": librosa.feature.tonnetz(chroma=chroma_cens, sr=sr_hz),
        "rms": librosa.feature.rms(S=magnitude, frame_length=N_FFT, hop_length=HOP_LENGTH),
        "spectral_centroid": centroid,
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(
            S=magnitude, sr=sr_hz, n_fft=N_FFT, centroid=centroid
        ),
        "spectral_contrast": librosa.feature.spectral_contrast(
            S=magnitude, sr=sr_hz, n_fft=N_FFT, n_bands=CONTRAST_N_BANDS
        ),
        "spectral_rolloff": librosa.feature.spectral_rolloff(S=magnitude, sr=sr_hz, n_fft=N_FFT),
        "mfcc": librosa.feature.mfcc(S=_power_to_db(mfcc_mel, top_db=80.0), n_mfcc=N_MFCC),
    }
    n_frames = power.shape[1]
    for group, n_rows in HANDCRAFTED_GROUPS:
        rows = frames[group]
        if rows.shape != (n_rows, n_frames):  # every group shares the STFT's frame grid
            raise AssertionError(f"{group}: shape {rows.shape}, expected ({n_rows}, {n_frames})")
    return frames


def _summarise(rows: np.ndarray) -> np.ndarray:
    """The :data:`STATISTICS` of each row: shape (n_rows, 7) float64, NaN-free."""
    x = np.asarray(rows, dtype=np.float64)
    mean = x.mean(axis=1)
    std = x.std(axis=1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # constant rows: precision loss
        skew = scipy.stats.skew(x, axis=1)
        kurtosis = scipy.stats.kurtosis(x, axis=1)
    # A (numerically) constant row has no shape: define its skew and kurtosis as 0.
    flat = std <= 1e-6 * np.max(np.abs(x), axis=1)
    skew[flat] = 0.0
    kurtosis[flat] = 0.0
    stats = np.stack(
        [mean, np.median(x, axis=1), x.min(axis=1), x.max(axis=1), std, skew, kurtosis], axis=1
    )
    return np.nan_to_num(stats, nan=0.0, posinf=0.0, neginf=0.0)


def handcrafted_features(clip: np.ndarray, *, sr_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """The handcrafted librosa baseline: 74 per-frame coefficients x 7 statistics.

    Groups (:data:`HANDCRAFTED_GROUPS`): zero-crossing rate, chroma STFT, chroma CQT, chroma
    CENS, tonnetz, RMS, spectral centroid, bandwidth, contrast, rolloff and 20 MFCCs, as in the
    FMA dataset's ``features.csv``; each row summarised by mean, median, min, max, std,
    skewness and kurtosis (:data:`STATISTICS`). About 0.25 s for a 30 s clip once librosa is
    warm; the first call in a process also loads numba's compiled code (seconds).

    Parameters
    ----------
    clip : np.ndarray [shape=(n_samples,)]
        Mono samples in full-scale units, at least one STFT frame long.
    sr_hz : int
        Sample rate of ``clip`` in hertz.

    Returns
    -------
    np.ndarray [shape=(HANDCRAFTED_DIM,), dtype=float32]
        ``HANDCRAFTED_DIM == 518`` finite values, named by :data:`HANDCRAFTED_FEATURE_NAMES`.
        Units follow the group (Hz for centroid/bandwidth/rolloff, dB for contrast, ...):
        scale them (e.g. ``StandardScaler``) before comparing.
    """
    with _single_threaded_blas():
        frames = _handcrafted_frames(clip, int(sr_hz))
    stacked = np.concatenate([frames[group] for group, _ in HANDCRAFTED_GROUPS])
    # (74 rows, 7 statistics) -> row-major ravel = group, coefficient, statistic order.
    return _summarise(stacked).ravel().astype(np.float32)


def chromagram(clip: np.ndarray, *, sr_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Chromagram from the shared STFT's power (the chroma LSTM's input).

    ``librosa.feature.chroma_stft(S=power, sr=sr_hz, n_fft=N_FFT, tuning=0, n_chroma=12)``:
    the power of every STFT bin folded onto 12 pitch classes (A = 440 Hz, no tuning
    estimate), each frame scaled so that its largest pitch class is 1 (``norm=inf``). The
    STFT rather than a CQT keeps it cheap (about 20 ms per 30 s clip).

    Parameters
    ----------
    clip : np.ndarray [shape=(n_samples,)]
        Mono samples in full-scale units.
    sr_hz : int
        Sample rate of ``clip`` in hertz.

    Returns
    -------
    np.ndarray [shape=(N_CHROMA, n_frames), dtype=float32]
        Unitless energies in ``[0, 1]``, row 0 = C ... row 9 = A ... row 11 = B; the frame
        grid of :func:`log_mel_spectrogram` (30 s -> 1 292 frames).
    """
    import librosa  # deferred: see _mel_basis

    with _single_threaded_blas():
        power = _power_spectrogram(clip)
        chroma = librosa.feature.chroma_stft(S=power, sr=int(sr_hz), n_fft=N_FFT, tuning=0.0, n_chroma=N_CHROMA)
    return chroma.astype(np.float32, copy=False)


def musicnn_features(clip: np.ndarray, *, sr_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """The pretrained MusiCNN tagger's view of a clip: embedding and tags, each averaged over
    the clip's 3 s patches.

    :func:`songsim.models.musicnn.embed_clip`: the clip resampled to 16 kHz, musicnn's
    log-compressed 96-band mel spectrogram (in float32), cut into 187-frame patches, all
    patches through ``MSD_musicnn`` in one batch (on :func:`songsim.train.choose_device`'s
    device; the model is loaded once per process), then the mean over patches. One torch
    thread and one BLAS thread, so the numbers do not depend on the process's thread count
    (pool, Dask worker or app alike). About 0.5 s for a 30 s clip on one CPU core.

    Parameters
    ----------
    clip : np.ndarray [shape=(n_samples,)]
        Mono samples in full-scale units.
    sr_hz : int
        Sample rate of ``clip`` in hertz.

    Returns
    -------
    np.ndarray [shape=(MUSICNN_DIM,), dtype=float32]
        ``[:200]`` the penultimate layer (after its batch norm), ``[200:]`` the 50 MSD tag
        probabilities in ``songsim.models.musicnn.msd_tags()`` order.
    """
    from songsim.models.musicnn import embed_clip  # deferred: torch and the weights load on first use

    with _single_threaded_blas():
        embedding, tags = embed_clip(clip, sr_hz=int(sr_hz))
    return np.concatenate([embedding, tags]).astype(np.float32, copy=False)


def _unless_not_installed(read: Callable[[], str]) -> str:
    """``read()`` (a model's weights digest or library version, for a feature kind's settings),
    or ``"not installed"`` where it raises :class:`SongsimError` because the model or library is
    missing: :func:`extract_features` says so before computing anything, so such settings never
    key cached numbers."""
    try:
        return read()
    except SongsimError:
        return "not installed"


@lru_cache(maxsize=1)
def _musicnn_settings() -> dict[str, object]:
    """What changes the cached "musicnn" numbers: the port, its input, the weights, torch."""
    import torch

    from songsim.models import musicnn

    return {
        "port_version": MUSICNN_PORT_VERSION,
        "model": musicnn.MODEL_FOLDER,
        "weights_sha256": _unless_not_installed(musicnn.weights_digest),
        "model_sr_hz": musicnn.SR_HZ,
        "model_n_fft": musicnn.N_FFT,
        "model_hop_length": musicnn.HOP_LENGTH,
        "model_n_mels": musicnn.N_MELS,
        "patch_frames": musicnn.PATCH_FRAMES,
        "log": "log10(10000 mel + 1), float32",
        "summary": "mean over patches: penultimate (200), tag probabilities (50)",
        "torch": ".".join(torch.__version__.split("+")[0].split(".")[:2]),
    }


def musly_features(clip: np.ndarray, *, sr_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Musly's ``timbre`` model of a clip (:func:`songsim.models.musly.analyse_clip`): a
    Gaussian over 25 MFCCs, as ``serialize_track`` writes it. About 40 ms for 30 s.

    Parameters
    ----------
    clip : np.ndarray [shape=(n_samples,)]
        Mono samples in full-scale units: the excerpt of :data:`CLIP_OPTIONS` ``["musly"]``.
    sr_hz : int
        Sample rate of ``clip`` in hertz; Musly analyses 22 050 Hz (resampled if another).

    Returns
    -------
    np.ndarray [shape=(MUSLY_DIM,), dtype=float32]
        The mean (25), the covariance's upper triangle (325) and its log-determinant (1).
    """
    from songsim.models import musly  # deferred: pymusly loads on first use

    if int(sr_hz) != musly.SR_HZ:
        import soxr

        clip = soxr.resample(clip, int(sr_hz), musly.SR_HZ, quality="HQ")
    return musly.analyse_clip(clip)


def _musly_settings() -> dict[str, object]:
    """What changes the cached "musly" numbers: the method, the excerpt, Musly's version."""
    from songsim.models import musly

    return {
        "method": musly.METHOD,
        "musly": _unless_not_installed(musly.musly_version),
        "clip_position": f"middle, from {MUSLY_EXCERPT_MAX_START_S:g} s at the latest",
        "track": "serialize_track, big-endian float32 stored as native float32",
    }


def _check_musicnn_installed() -> None:
    """Raise :class:`songsim.models.musicnn.MusicnnNotInstalledError` (names the install
    command) when the musicnn package's model files are missing."""
    from songsim.models.musicnn import weights_digest

    weights_digest()


def compute_features(clip: np.ndarray, *, kind: FeatureKind, sr_hz: int = SAMPLE_RATE_HZ):
    """One feature kind of one clip (what :func:`extract_features` caches per track).

    Parameters
    ----------
    clip : np.ndarray [shape=(n_samples,)]
        Mono samples in full-scale units.
    kind : {"handcrafted", "mel", "chroma", "musicnn", "musly"}
        :func:`handcrafted_features`, :func:`log_mel_spectrogram`, :func:`chromagram`,
        :func:`musicnn_features` or :func:`musly_features`.
    sr_hz : int
        Sample rate of ``clip`` in hertz.

    Returns
    -------
    np.ndarray [shape=(HANDCRAFTED_DIM,), (N_MELS, n_frames), (N_CHROMA, n_frames), (MUSICNN_DIM,) or (MUSLY_DIM,), dtype=float32]
    """
    _check_kind(kind)
    if kind == "handcrafted":
        return handcrafted_features(clip, sr_hz=sr_hz)
    if kind == "chroma":
        return chromagram(clip, sr_hz=sr_hz)
    if kind == "musicnn":
        return musicnn_features(clip, sr_hz=sr_hz)
    if kind == "musly":
        return musly_features(clip, sr_hz=sr_hz)
    return log_mel_spectrogram(clip, sr_hz=sr_hz)


# ============================================================================================
# cache


def _check_kind(kind: str) -> None:
    if kind not in FEATURE_KINDS:
        raise ValueError(f"kind must be one of {FEATURE_KINDS}, got {kind!r}")


def _settings(kind: str) -> dict[str, object]:
    """Everything that changes the cached numbers of ``kind``."""
    settings: dict[str, object] = {
        "kind": kind,
        "version": FEATURE_SETTINGS_VERSION,
        "sr_hz": SAMPLE_RATE_HZ,
        "clip_duration_s": CLIP_DURATION_S,
        "clip_position": "middle",
        "n_fft": N_FFT,
        "hop_length": HOP_LENGTH,
    }
    if kind == "mel":
        settings.update(n_mels=N_MELS, fmin_hz=MEL_FMIN_HZ, top_db=MEL_TOP_DB)
    elif kind == "chroma":
        settings.update(n_chroma=N_CHROMA, source="stft power", tuning=0.0, norm="inf")
    elif kind == "musicnn":
        settings.update(_musicnn_settings())
    elif kind == "musly":
        settings.update(_musly_settings())
    else:
        from importlib.metadata import version

        librosa_version = version("librosa")
        names = "\n".join(HANDCRAFTED_FEATURE_NAMES)
        settings.update(
            names_sha=hashlib.sha256(names.encode()).hexdigest()[:12],
            librosa=".".join(librosa_version.split(".")[:2]),
            cqt=[CQT_FMIN_HZ, CQT_BINS_PER_OCTAVE, CQT_N_OCTAVES],
            mfcc=[MFCC_N_MELS, N_MFCC],
        )
    return settings


def feature_cache_dir(cache_dir: str | os.PathLike, kind: FeatureKind) -> Path:
    """The folder holding one ``<fingerprint>.npy`` per track for ``kind``.

    ``<cache_dir>/<kind>-<hash of the settings>/``: changing any feature setting (or
    :data:`FEATURE_SETTINGS_VERSION`) moves to a new folder, so stale features are never read.
    A ``settings.json`` in the folder records the settings for humans.

    Parameters
    ----------
    cache_dir : str or path-like
        Root of the feature cache, e.g. ``<catalogue>/.songsim/features``.
    kind : {"handcrafted", "mel", "chroma", "musicnn", "musly"}

    Returns
    -------
    Path
    """
    _check_kind(kind)
    blob = json.dumps(_settings(kind), sort_keys=True)
    return Path(cache_dir) / f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def feature_cache_path(cache_dir: str | os.PathLike, kind: FeatureKind, fingerprint: str) -> Path:
    """Where the ``kind`` features of the audio with content ``fingerprint`` are cached.

    Parameters
    ----------
    cache_dir : str or path-like
        Root of the feature cache.
    kind : {"handcrafted", "mel", "chroma", "musicnn", "musly"}
    fingerprint : str
        Content fingerprint of the audio file (:func:`songsim.audio.file_fingerprint`).

    Returns
    -------
    Path
        ``feature_cache_dir(cache_dir, kind) / f"{fingerprint}.npy"``.
    """
    _check_fingerprint(fingerprint)
    return feature_cache_dir(cache_dir, kind) / f"{fingerprint}.npy"


def _check_fingerprint(fingerprint: str) -> None:
    if not isinstance(fingerprint, str) or not _FINGERPRINT_RE.match(fingerprint):
        raise ValueError(
            f"fingerprint must be 1-128 characters of [0-9A-Za-z_-], got {fingerprint!r}"
        )


def _load_cached(path: Path, kind: str, mmap_mode: Literal["r"] | None) -> np.ndarray | None:
    """The cached array, or ``None`` if absent or unusable (then it is recomputed)."""
    try:
        array = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if array.dtype != np.float32:
        return None
    if kind == "handcrafted" and array.shape != (HANDCRAFTED_DIM,):
        return None
    if kind == "mel" and (array.ndim != 2 or array.shape[0] != N_MELS or array.shape[1] == 0):
        return None
    if kind == "chroma" and (array.ndim != 2 or array.shape[0] != N_CHROMA or array.shape[1] == 0):
        return None
    if kind == "musicnn" and (array.shape != (MUSICNN_DIM,) or not np.isfinite(array).all()):
        return None
    if kind == "musly" and (array.shape != (MUSLY_DIM,) or not np.isfinite(array).all()):
        return None
    return array


def _compute(path: str, kind: str) -> tuple[np.ndarray | None, str | None]:
    """Decode ``path`` and compute ``kind``: ``(features, None)`` or ``(None, reason)``.

    Runs in pool and Dask workers, hence top-level and returning a reason string instead of
    raising: one bad file must not stop the others.
    """
    try:
        clip = load_clip(path, sr_hz=SAMPLE_RATE_HZ, **CLIP_OPTIONS.get(kind, _DEFAULT_CLIP_OPTIONS))  # type: ignore[arg-type]
        features = compute_features(clip, kind=kind, sr_hz=SAMPLE_RATE_HZ)  # type: ignore[arg-type]
    except SongsimError as error:
        return None, _reason(error, path)
    except MemoryError:
        return None, "out of memory while analysing it"
    except Exception as error:  # noqa: BLE001 - report, keep going with the other files
        return None, f"unexpected {type(error).__name__}: {error}"
    return np.ascontiguousarray(features, dtype=np.float32), None


def _store(features: np.ndarray, out_path: str) -> str | None:
    """Write ``features`` atomically to ``out_path``; a reason string if that fails."""
    try:
        with atomic_write(out_path) as handle:
            np.save(handle, np.ascontiguousarray(features, dtype=np.float32), allow_pickle=False)
    except OSError as error:
        return f"cannot write the feature cache file {out_path} ({error.strerror or error})"
    return None


def _compute_and_store(path: str, kind: str, out_path: str) -> str | None:
    """Decode ``path``, compute ``kind`` and write it atomically to ``out_path``.

    Returns a reason string (``None`` = success) instead of raising (see :func:`_compute`).
    """
    features, reason = _compute(path, kind)
    if features is None:
        return reason
    return _store(features, out_path)


def _reason(error: Exception, path: str) -> str:
    """The error message without the leading ``<path>: `` (the report already names it)."""
    text = str(error)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _default_n_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def extract_features(
    paths: Sequence[str | os.PathLike],
    fingerprints: Sequence[str],
    *,
    kind: FeatureKind,
    cache_dir: str | os.PathLike,
    n_jobs: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    mmap_mode: Literal["r"] | None = None,
    dask_address: str | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Features of many audio files, computing only those not cached yet.

    Each track is decoded with :func:`songsim.audio.load_clip` (the middle
    ``CLIP_DURATION_S`` seconds, mono, ``SAMPLE_RATE_HZ``; Musly's own excerpt for ``"musly"``,
    :data:`CLIP_OPTIONS`) and its features are stored as
    ``feature_cache_path(cache_dir, kind, fingerprint)`` -- one ``.npy`` per track, written
    atomically, so an interrupted run loses at most the tracks in progress and the next run
    resumes. Tracks with the same fingerprint are computed once. Missing tracks are spread
    over ``n_jobs`` worker processes (joblib's reusable loky pool, kept warm between calls);
    batches smaller than :data:`MIN_TRACKS_FOR_POOL` run in this process. With
    ``dask_address`` they run on a Dask distributed cluster instead (see below). The result
    is bit-identical whatever ``n_jobs`` and on either backend.

    **On a Dask cluster** (``dask_address="tcp://HOST:8786"``) every missing track is one
    task. A worker opens the audio at the **same absolute path** as this machine, so the
    catalogue's audio must be mounted at that path on every worker (NFS, SMB, a copy); a
    worker that cannot read a file fails that file alone, with a reason naming the worker and
    the fix. The worker sends the array back, and **this process writes the cache**
    (atomically, as each task finishes): the cache folder needs to be neither shared nor
    writable on the workers, and an interrupted run keeps every track already received.
    Workers need the same Python environment (``pip install -r requirements.txt``, songsim
    importable); a worker whose feature settings differ from this machine's (another songsim
    or librosa version) fails its files instead of caching different numbers. ``n_jobs`` is
    ignored (the cluster's workers set the parallelism; start them with one thread each:
    feature computations in one process are serialised, see :func:`_single_threaded_blas`).
    Nothing connects to the scheduler when every track is cached.

    Parameters
    ----------
    paths : sequence of str or path-like [length n_tracks]
        Audio files (WAV, FLAC, OGG/Vorbis, MP3).
    fingerprints : sequence of str [length n_tracks]
        Content fingerprint of each file (:func:`songsim.audio.file_fingerprint`): the cache
        key, so a file whose content changed gets a new fingerprint and is recomputed.
    kind : {"handcrafted", "mel", "chroma", "musicnn", "musly"}
        Which features: see :func:`compute_features`.
    cache_dir : str or path-like
        Root of the feature cache, e.g. ``<catalogue>/.songsim/features``; the files live in
        a per-kind, per-settings sub-folder (:func:`feature_cache_dir`).
    n_jobs : int, optional
        Worker processes; ``None`` or ``-1`` uses every core available to this process.
    on_progress : callable(done, total), optional
        Called with ``(n_tracks_done, n_tracks)``: once at the start (cached tracks count as
        done) and after each track computed, successfully or not.
    mmap_mode : {None, "r"}
        ``"r"`` memory-maps the cached arrays read-only instead of loading them (useful for
        the mel spectrograms of a large catalogue).
    dask_address : str, optional
        Address of a Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``: compute the missing
        tracks on that cluster instead of local processes. ``None`` (default): local.

    Returns
    -------
    np.ndarray [shape=(n_tracks, HANDCRAFTED_DIM), (n_tracks, MUSICNN_DIM) or (n_tracks, MUSLY_DIM), dtype=float32]
        For ``kind="handcrafted"``, ``"musicnn"`` and ``"musly"``, rows in input order (read whole,
        whatever ``mmap_mode``).
    list of np.ndarray [length n_tracks, each shape=(N_MELS, n_frames), dtype=float32]
        For ``kind="mel"``, in input order; ``n_frames`` is 1 292 for a track of 30 s or
        more and fewer for a shorter one, so the arrays are not stacked. For
        ``kind="chroma"`` the same with (N_CHROMA, n_frames) arrays.

    Raises
    ------
    FeatureExtractionError
        After every other track was computed and cached: lists each file that failed
        (unreadable, silent, too short, ...) with its reason (``.failures``).
    SongsimError
        With ``dask_address``: the scheduler does not answer within
        :data:`DASK_CONNECT_TIMEOUT_S` seconds, or has no worker (nothing is computed).
    ValueError
        ``paths`` and ``fingerprints`` differ in length, an unknown ``kind`` or a malformed
        fingerprint.
    """
    _check_kind(kind)
    paths = [str(p) for p in paths]
    fingerprints = list(fingerprints)
    if len(paths) != len(fingerprints):
        raise ValueError(
            f"paths and fingerprints differ in length: {len(paths)} != {len(fingerprints)}"
        )
    for fingerprint in fingerprints:
        _check_fingerprint(fingerprint)
    if mmap_mode not in (None, "r"):
        raise ValueError(f"mmap_mode must be None or 'r', got {mmap_mode!r}")
    workers = _default_n_jobs() if n_jobs is None or n_jobs == -1 else int(n_jobs)
    if workers < 1:
        raise SongsimError(f"--jobs must be a positive integer or -1 (every core); got {n_jobs!r}.")
    if dask_address is not None and (not isinstance(dask_address, str) or not dask_address.strip()):
        raise SongsimError(f"--dask must be a scheduler address such as 'tcp://HOST:8786'; got {dask_address!r}.")
    n_tracks = len(paths)
    if kind == "musicnn":
        _check_musicnn_installed()  # one clear error rather than one per file
    if kind == "musly":
        from songsim.models.musly import musly_version

        musly_version()  # MuslyNotInstalledError names the install command
    if kind in VECTOR_KINDS:
        mmap_mode = None  # small vectors, stacked below: read them whole
    folder = feature_cache_dir(cache_dir, kind)
    _prepare_folder(folder, kind)

    loaded: dict[str, np.ndarray] = {}
    todo: dict[str, str] = {}  # fingerprint -> first path with that content
    for path, fingerprint in zip(paths, fingerprints):
        if fingerprint in loaded or fingerprint in todo:
            continue
        array = _load_cached(folder / f"{fingerprint}.npy", kind, mmap_mode)
        if array is None:
            todo[fingerprint] = path
        else:
            loaded[fingerprint] = array
    tracks_of = _count_by_fingerprint(fingerprints)
    done = sum(tracks_of[fp] for fp in loaded)
    if on_progress is not None:
        on_progress(done, n_tracks)

    failed: dict[str, str] = {}  # fingerprint -> reason
    workers = min(workers, len(todo))
    jobs = [(fp, path, str(folder / f"{fp}.npy")) for fp, path in todo.items()]

    def finished(fingerprint: str, reason: str | None) -> None:
        nonlocal done
        if reason is not None:
            failed[fingerprint] = reason
        done += tracks_of[fingerprint]
        if on_progress is not None:
            on_progress(done, n_tracks)

    if dask_address is not None and jobs:
        _run_dask(jobs, kind, dask_address.strip(), finished)
    elif workers <= 1 or len(jobs) < MIN_TRACKS_FOR_POOL:
        for fingerprint, path, out_path in jobs:
            finished(fingerprint, _compute_and_store(path, kind, out_path))
    else:
        _run_pool(jobs, kind, workers, finished)

    if failed:
        failures = {}
        for path, fingerprint in zip(paths, fingerprints):
            if fingerprint in failed and path not in failures:
                failures[path] = failed[fingerprint]
        raise FeatureExtractionError(failures, n_tracks)

    for fingerprint in todo:
        array = _load_cached(folder / f"{fingerprint}.npy", kind, mmap_mode)
        if array is None:  # deleted under our feet: say so rather than return garbage
            raise SongsimError(
                f"{todo[fingerprint]}: its features were computed but "
                f"{folder / (fingerprint + '.npy')} cannot be read back. Check the disk "
                "(space, permissions, another process cleaning the folder) and run again."
            )
        loaded[fingerprint] = array
    if kind in VECTOR_KINDS:
        if n_tracks == 0:
            return np.zeros((0, _DIMS[kind]), dtype=np.float32)
        return np.stack([loaded[fp] for fp in fingerprints]).astype(np.float32, copy=False)
    return [loaded[fp] for fp in fingerprints]


def _count_by_fingerprint(fingerprints: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for fingerprint in fingerprints:
        counts[fingerprint] = counts.get(fingerprint, 0) + 1
    return counts


def _prepare_folder(folder: Path, kind: str) -> None:
    """Create the cache folder and its ``settings.json``; a clear error if it is not writable."""
    target = folder / "settings.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if target.exists():
            return
        with atomic_write(target) as handle:
            handle.write(json.dumps(_settings(kind), indent=2, sort_keys=True).encode())
    except OSError as error:
        raise SongsimError(
            f"{folder}: cannot write the feature cache ({error.strerror or error}). "
            "Check that the catalogue folder is writable and the disk is not full."
        ) from error


def _compute_job(fingerprint: str, path: str, kind: str, out_path: str) -> tuple[str, str | None]:
    """Pool task: :func:`_compute_and_store` tagged with its fingerprint (results come back
    in completion order)."""
    return fingerprint, _compute_and_store(path, kind, out_path)


def _run_pool(
    jobs: list[tuple[str, str, str]],
    kind: str,
    workers: int,
    finished: Callable[[str, str | None], None],
) -> None:
    """Run ``jobs`` (fingerprint, path, out_path) on joblib's reusable loky process pool.

    loky rather than a bare ``ProcessPoolExecutor``: its workers are started by fork+exec
    (safe from a multithreaded app such as Streamlit), it does not re-run an unguarded
    ``__main__`` script in the workers, and the workers stay warm between calls (librosa's
    imports and numba caches cost seconds per cold worker). Tasks are dispatched lazily, so
    leaving early (an exception from ``on_progress``, Ctrl-C) cancels the rest; finished
    tracks are already on disk.
    """
    from joblib import Parallel, delayed

    results = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")(
        delayed(_compute_job)(fingerprint, path, kind, out_path)
        for fingerprint, path, out_path in jobs
    )
    pending = {fingerprint for fingerprint, _, _ in jobs}
    try:
        while pending:
            try:
                fingerprint, reason = next(results)
            except StopIteration:
                break
            except Exception as error:  # noqa: BLE001 - the pool broke (a worker died)
                reason = (
                    f"a worker process failed while this file was queued or being analysed "
                    f"({type(error).__name__}: {str(error).strip()[:200]}; out of memory? a "
                    "decoder crash?); run again, with n_jobs=1 to find the culprit if it recurs"
                )
                for fingerprint in sorted(pending):
                    finished(fingerprint, reason)
                return
            pending.discard(fingerprint)
            finished(fingerprint, reason)
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


# ============================================================================================
# Dask distributed backend


def feature_backend(*, n_jobs: int | None = None, dask_address: str | None = None) -> str:
    """Where :func:`extract_features` computes missing tracks with these arguments, in words
    for progress messages and build reports: ``"dask tcp://HOST:8786"`` or ``"local, 4
    processes"`` (batches under :data:`MIN_TRACKS_FOR_POOL` tracks run in-process)."""
    if dask_address is not None:
        return f"dask {dask_address.strip()}"
    workers = _default_n_jobs() if n_jobs is None or n_jobs == -1 else int(n_jobs)
    return f"local, {workers} process{'es' if workers != 1 else ''}"


@lru_cache(maxsize=8)
def _settings_key(kind: str) -> str:
    """``<kind>-<hash of the settings>``: equal on two machines iff they compute the same
    numbers (same code version, same librosa minor version)."""
    return feature_cache_dir(".", kind).name  # type: ignore[arg-type]


def _readable(path: str) -> bool:
    """Whether this process can open ``path`` for reading."""
    return os.path.isfile(path) and os.access(path, os.R_OK)


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except Exception:  # noqa: BLE001 - not inside a Dask worker
        return "(not a Dask worker)"


def _dask_task(
    fingerprint: str, path: str, kind: str, settings_key: str
) -> tuple[str, np.ndarray | None, str | None, str, bool]:
    """Dask task: ``(fingerprint, features or None, reason or None, worker address,
    unreadable)``; ``unreadable`` is True when the worker cannot open ``path`` at all.

    Returns the array instead of writing it: the client writes the cache (see
    :func:`extract_features`). Never raises for a bad file, like :func:`_compute`.
    """
    worker = _worker_address()
    if not _readable(path):
        reason = (
            f"worker {worker} cannot read {path}: mount the catalogue at the same path on "
            "every worker (see README)"
        )
        return fingerprint, None, reason, worker, True
    if _settings_key(kind) != settings_key:
        reason = (
            f"worker {worker} computes different {kind} features than this machine (settings "
            f"{_settings_key(kind)}, here {settings_key}: another songsim or librosa version); "
            "install the same environment on every worker (see README)"
        )
        return fingerprint, None, reason, worker, False
    features, reason = _compute(path, kind)
    return fingerprint, features, reason, worker, False


def _close_client(client) -> None:
    """Close a ``distributed.Client`` completely, whatever state it is in: connected, half
    started (its constructor failed or was interrupted: its IO-loop thread still runs) or
    already closed.

    Never leave a client to the garbage collector: ``Client.__del__`` closes it, which takes
    ``distributed.utils.LoopRunner``'s class-wide lock, and when the collector runs inside
    another client's start (which holds that lock) the process waits on itself forever.
    """
    try:
        if getattr(client, "status", None) == "running":
            client.close(timeout=DASK_CONNECT_TIMEOUT_S)
    except Exception:  # noqa: BLE001, S110 - a scheduler gone away: its loop is stopped below all the same
        pass
    finally:
        runner = getattr(client, "_loop_runner", None)  # a half-started client's loop thread
        if runner is not None:
            runner.stop()  # does nothing when close() stopped it already
        client.status = "closed"  # so that its __del__ does nothing


@contextmanager
def _dask_client(address: str) -> Iterator[Any]:
    """A ``distributed.Client`` connected to ``address`` with at least one worker, closed on
    leaving (:func:`_close_client`) however that happens: a failed or interrupted connect,
    an error, Ctrl-C. Raises a :class:`SongsimError` naming the address and the fix within
    about 2 x :data:`DASK_CONNECT_TIMEOUT_S` seconds."""
    try:
        from distributed import Client
    except ImportError as error:
        raise SongsimError(
            f"extracting features on the Dask cluster at {address} needs the dask and "
            f"distributed packages ({error}): pip install -r requirements.txt"
        ) from error
    # made apart from its __init__, so that a client whose connect fails (or is interrupted)
    # is still in hand to be closed, not left half started to the garbage collector
    client = Client.__new__(Client)
    try:
        try:
            client.__init__(address, timeout=DASK_CONNECT_TIMEOUT_S, set_as_default=False)
        except Exception as error:  # noqa: BLE001 - OSError (timeout, refused), ValueError (scheme), ...
            detail = str(error).strip() or type(error).__name__
            raise SongsimError(
                f"cannot connect to the Dask scheduler at {address} ({detail}). Check the address "
                "(tcp://HOST:8786, the port `dask scheduler` prints), that the scheduler is running "
                "and that this machine can reach that port; or leave out the Dask address (--dask) "
                "to extract features on this machine's cores."
            ) from error
        try:
            client.wait_for_workers(1, timeout=DASK_CONNECT_TIMEOUT_S)
        except Exception as error:  # noqa: BLE001 - TimeoutError
            raise SongsimError(
                f"the Dask scheduler at {address} has no workers. Start them on each machine with "
                f"`dask worker {address} --nthreads 1 --nworkers N` in the same Python environment "
                "as this machine (see README), then run again."
            ) from error
        yield client
    finally:
        _close_client(client)


#: this many tasks failing in a row (not a file's own failure, which the task reports) means
#: the cluster is broken: one error about it instead of a "bad file" line per track
DASK_MAX_LOST_IN_A_ROW = 8


def _task_failure(error: BaseException) -> str:
    """The reason for a file whose Dask task raised (the task itself never raises for a bad
    file, so this is the cluster's fault: a dead worker, a missing module, a cancellation)."""
    text = f"{type(error).__name__}: {str(error).strip()[:200]}"
    if isinstance(error, ImportError):
        return (
            f"a Dask worker cannot run songsim ({text}): install the same environment "
            "(pip install -r requirements.txt) and make songsim importable on every worker "
            "(see README)"
        )
    return (
        f"the Dask cluster lost this task ({text}; a worker died: out of memory? a decoder "
        "crash?); run again, without --dask to find the culprit if it recurs"
    )


def _run_dask(
    jobs: list[tuple[str, str, str]],
    kind: str,
    address: str,
    finished: Callable[[str, str | None], None],
) -> None:
    """Run ``jobs`` (fingerprint, path, out_path) on the Dask cluster at ``address``.

    One task per track (:func:`_dask_task`), submitted at once (the scheduler queues them);
    results are taken in completion order (``distributed.as_completed``), written to the
    cache here and released, so at most the tracks finished but not yet received sit in the
    workers' memory. Paths are made absolute (workers do not share this working directory).
    Leaving early (an exception from ``on_progress``, Ctrl-C) closes the client, which
    cancels the tasks not yet run; tracks already received are on disk.
    """
    import uuid

    from distributed import as_completed

    with _dask_client(address) as client:
        settings_key = _settings_key(kind)
        token = uuid.uuid4().hex[:8]  # keys private to this call: never reuse another run's result
        fingerprints = [fingerprint for fingerprint, _, _ in jobs]
        job_of = {f"songsim-{kind}-{fingerprint}-{token}": job for fingerprint, job in zip(fingerprints, jobs)}
        futures = client.map(
            _dask_task,
            fingerprints,
            [os.path.abspath(path) for _, path, _ in jobs],
            [kind] * len(jobs),
            [settings_key] * len(jobs),
            key=list(job_of),
        )
        completed = as_completed(futures, loop=client.loop)
        del futures  # as_completed holds each future until it is handed out
        lost_in_a_row = 0
        for future in completed:
            fingerprint, path, out_path = job_of[future.key]
            try:
                _, features, reason, worker, unreadable = future.result()
            except Exception as error:  # noqa: BLE001 - KilledWorker, CancelledError, ImportError, ...
                features, reason = None, _task_failure(error)
                lost_in_a_row += 1
                if lost_in_a_row >= DASK_MAX_LOST_IN_A_ROW:  # the cluster is broken, not the files
                    raise SongsimError(
                        f"the Dask cluster at {address} lost {lost_in_a_row} tasks in a row; the last: {reason}. "
                        "The tracks received before are cached: fix the workers and build again."
                    ) from error
            else:
                lost_in_a_row = 0
                if unreadable and not _readable(path):  # missing here too: not a mount problem
                    reason = (
                        f"cannot be read, neither on this machine nor on worker {worker}. Check the "
                        "path (and that the catalogue folder was copied completely)."
                    )
            future.release()
            if features is not None:
                reason = _store(features, out_path)
            finished(fingerprint, reason)

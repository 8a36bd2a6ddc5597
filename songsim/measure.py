"""The 11 Spotify-style features of a song: from the catalogue, or measured from its audio.

A catalogue song has its features in ``tracks.csv`` (:data:`~songsim.catalogue.SPOTIFY_FEATURES`).
An uploaded song has none, so :func:`song_metadata` decides per song:

1. a catalogue track id (the build path) → that row of ``tracks.csv``;
2. an upload whose audio content (fingerprint) equals a catalogue track's → that track's row,
   so a catalogue song sent through the upload path gets exactly its catalogue vector;
3. any other song → the features measurable from audio (:data:`MEASURED_FEATURES`, by
   :func:`measure_metadata`), the others missing (NaN), to be imputed by the metadata space
   from the catalogue. Measured values are cached per fingerprint.

Every value comes with its source (``"catalogue"``, ``"measured"`` or ``"missing"``) so the UI
can show which values were measured and which imputed.

Measured from the middle 30 s clip (units as in ``tracks.csv``):

``loudness``  RMS level in dBFS (the demo catalogue's definition; Spotify's is an integrated
              loudness in dB, close to it for mastered music).
``tempo``     librosa's onset-autocorrelation tempo estimate in bpm (may be off by an octave).
``mode``      1 (major) if the mean chroma correlates better with a rotated Krumhansl–Kessler
              major profile than with any minor one, else 0.
``energy``    0–1: the mean of three 0–1 terms, loudness ``(dBFS + 30) / 25``, tempo
              ``(bpm − 60) / 120`` and onset rate ``onsets per second / 8`` (each clipped):
              a proxy for Spotify's "perceptual intensity and activity".

On the demo catalogue these agree with ``tracks.csv`` as reported by ``bench/bench_train.py``
(loudness r ≈ 1.00, tempo within 4 % for ≈ 80 % of songs, mode ≈ 80 %, energy r ≈ 0.6).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from songsim.audio import load_clip, rms_dbfs
from songsim.catalogue import SPOTIFY_FEATURES, Catalogue
from songsim.config import CLIP_DURATION_S, HOP_LENGTH, SAMPLE_RATE_HZ
from songsim.files import read_json, write_json

__all__ = ["MEASURED_FEATURES", "METADATA_SOURCES", "MetadataReading", "measure_metadata", "metadata_matrix", "song_metadata"]

#: the Spotify-style features measured from audio for a song the catalogue does not hold
MEASURED_FEATURES = ("energy", "loudness", "mode", "tempo")
#: where a value came from
METADATA_SOURCES = ("catalogue", "measured", "missing")
MEASURE_VERSION = 1  # bump when a measurement changes: cached measurements are then ignored

# Krumhansl & Kessler (1982) probe-tone key profiles, C first
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
ONSETS_PER_S_FULL_ENERGY = 8.0


def _best_key_correlation(chroma: np.ndarray, profile: np.ndarray) -> float:
    return max(float(np.corrcoef(np.roll(profile, shift), chroma)[0, 1]) for shift in range(12))


def measure_metadata(clip: np.ndarray, *, sr_hz: int = SAMPLE_RATE_HZ) -> dict[str, float]:
    """The :data:`MEASURED_FEATURES` of a clip (see the module docstring for definitions).

    Parameters
    ----------
    clip : np.ndarray [shape=(n_samples,), float32]
        Mono samples in full-scale units (e.g. from :func:`songsim.audio.load_clip`).
    sr_hz : int
        Sample rate in hertz.

    Returns
    -------
    dict of str to float
        ``energy`` (0–1), ``loudness`` (dBFS), ``mode`` (0 or 1), ``tempo`` (bpm).
    """
    import librosa  # deferred: slow to import

    clip = np.asarray(clip, dtype=np.float32)
    loudness_db = rms_dbfs(clip)
    onset = librosa.onset.onset_strength(y=clip, sr=sr_hz, hop_length=HOP_LENGTH)
    tempo_bpm = float(librosa.feature.tempo(onset_envelope=onset, sr=sr_hz, hop_length=HOP_LENGTH)[0])
    chroma = librosa.feature.chroma_stft(y=clip, sr=sr_hz, hop_length=HOP_LENGTH, tuning=0.0).mean(axis=1)
    major = _best_key_correlation(chroma, _MAJOR_PROFILE) > _best_key_correlation(chroma, _MINOR_PROFILE)
    onsets_per_s = len(librosa.onset.onset_detect(onset_envelope=onset, sr=sr_hz, hop_length=HOP_LENGTH)) / (len(clip) / sr_hz)
    terms = np.clip([(loudness_db + 30.0) / 25.0, (tempo_bpm - 60.0) / 120.0, onsets_per_s / ONSETS_PER_S_FULL_ENERGY], 0.0, 1.0)
    return {"energy": float(terms.mean()), "loudness": float(loudness_db), "mode": float(major), "tempo": tempo_bpm}


@dataclass(frozen=True)
class MetadataReading:
    """The Spotify-style features of one song and where each came from.

    Attributes
    ----------
    values : np.ndarray [shape=(11,), float64]
        In :data:`~songsim.catalogue.SPOTIFY_FEATURES` order and ``tracks.csv`` units; NaN
        where missing.
    sources : tuple of str [length 11]
        ``"catalogue"``, ``"measured"`` or ``"missing"`` per feature.
    """

    values: np.ndarray
    sources: tuple[str, ...]


def _catalogue_reading(catalogue: Catalogue, row: int) -> MetadataReading:
    values = np.array(
        [float(catalogue.tracks[c].iloc[row]) if c in catalogue.tracks else np.nan for c in SPOTIFY_FEATURES], dtype=np.float64
    )
    return MetadataReading(values=values, sources=tuple("missing" if np.isnan(v) else "catalogue" for v in values))


def _measured_reading(path: Path, fingerprint: str, cache_dir: Path) -> MetadataReading:
    cache_path = Path(cache_dir) / f"metadata-v{MEASURE_VERSION}" / f"{fingerprint}.json"
    measured = read_json(cache_path)
    if not isinstance(measured, dict) or set(measured) != set(MEASURED_FEATURES):
        clip = load_clip(path, sr_hz=SAMPLE_RATE_HZ, duration_s=CLIP_DURATION_S, position="middle")
        measured = measure_metadata(clip, sr_hz=SAMPLE_RATE_HZ)
        write_json(cache_path, measured)
    values = np.array([measured.get(c, np.nan) for c in SPOTIFY_FEATURES], dtype=np.float64)
    return MetadataReading(values=values, sources=tuple("measured" if c in measured else "missing" for c in SPOTIFY_FEATURES))


def song_metadata(
    catalogue: Catalogue, *, path: str | os.PathLike, fingerprint: str, key: str, cache_dir: str | os.PathLike
) -> MetadataReading:
    """The Spotify-style features of one song, by the rule of the module docstring.

    Parameters
    ----------
    catalogue : Catalogue
    path : path-like
        The song's audio (decoded only when its features must be measured).
    fingerprint : str
        Its content fingerprint (matches catalogue audio; keys the measurement cache).
    key : str
        A catalogue track id, or an upload's fingerprint.
    cache_dir : path-like
        Root of the per-song cache, e.g. ``<catalogue>/.songsim/features``.

    Returns
    -------
    MetadataReading
    """
    if key in catalogue:
        return _catalogue_reading(catalogue, catalogue.row_of(key))
    fingerprints = catalogue.audio_fingerprints()
    if fingerprint in fingerprints:
        return _catalogue_reading(catalogue, fingerprints.index(fingerprint))
    return _measured_reading(Path(path), fingerprint, Path(cache_dir))


def metadata_matrix(
    catalogue: Catalogue,
    *,
    paths: Sequence[str | os.PathLike],
    fingerprints: Sequence[str],
    keys: Sequence[str],
    cache_dir: str | os.PathLike,
) -> np.ndarray:
    """:func:`song_metadata` of m songs as a matrix (the ``"metadata"`` input of a space).

    Returns
    -------
    np.ndarray [shape=(m, 11), float64]
        :data:`~songsim.catalogue.SPOTIFY_FEATURES` columns, NaN where missing.
    """
    rows = [
        song_metadata(catalogue, path=p, fingerprint=f, key=k, cache_dir=cache_dir).values
        for p, f, k in zip(paths, fingerprints, keys)
    ]
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(SPOTIFY_FEATURES))

"""Musly (Schnitzer et al.) through ``pymusly``: the ``timbre`` method and its mutual proximity.

Musly (https://www.musly.org, MPL-2.0; the ``pymusly`` binding, MIT) models a song's timbre as a
single Gaussian over 25 MFCCs (36 mel bands, 1 024-sample Hann frames, half overlap, on the 22 050
Hz mono signal), compares two songs by the Jensen-Shannon divergence of their Gaussians and
normalises that by **mutual proximity** (D. Schnitzer, A. Flexer, M. Schedl, G. Widmer, "Local and
global scaling reduce hubs in space", JMLR 13, 2012; "Using mutual proximity to improve
content-based audio similarity", ISMIR 2011): the distance of songs x and y becomes
``1 - (1 - F_x(d)) (1 - F_y(d))``, where ``F_s`` is the normal CDF fitted to the divergences from
song s to the jukebox's *style* tracks. Distances are in [0, 1], 0 for a song and itself; smaller
is closer.

This module does what Musly's own command line does (``musly -a`` then ``-m``/``-e``), with
songsim's decoder in place of libav:

- **excerpt**: 30 s (:data:`EXCERPT_S`), centred in the file but starting at 48 s at the latest
  (:data:`EXCERPT_MAX_START_S`; ``musly_track_analyze_audiofile(mj, file, 30, -48, mt)``); a file
  shorter than 30 s is analysed whole. songsim decodes it with :func:`songsim.audio.load_clip`
  (``max_start_s``): soundfile, channels averaged to mono, soxr "HQ" to 22 050 Hz (Musly: libav,
  the same downmix, libresample) -- so a song's Musly track is close to, not bit-equal to,
  the one Musly's own decoder gives;
- **analysis**: ``track_from_audiodata`` on those samples (:func:`analyse_clip`; Musly itself
  keeps the central 60 s of longer input, so a 30 s excerpt is analysed whole); the track is
  kept as Musly serialises it (``serialize_track``: :data:`TRACK_DIM` = 351 big-endian float32:
  the mean (25), the upper triangle of the covariance (325) and its log-determinant (1)),
  stored in songsim's feature cache as native float32;
- **the jukebox** (:func:`build_collection`): ``set_style`` with every track of a catalogue of
  up to 1 000 tracks, else 1 000 drawn at random (``musly``'s ``tracks_initialize``, here from
  a seeded generator so a build is reproducible); ``add_tracks`` with ids 0 .. n-1 in
  ``tracks.csv`` order (this computes each track's mutual-proximity normalisation against the
  style tracks); then ``compute_similarity`` of every track against all of them: the full
  (n, n) distance matrix, as ``musly -m`` writes it;
- **a new song** (:func:`upload_distances`): added to the stored jukebox under a new id, then
  compared with every catalogue track -- what Musly gives when a song is added to a
  collection after its style was set (the style and the catalogue's normalisations do not
  change).

The jukebox is kept as bytes (``serialize_to_stream``: Musly's own format -- its version, the
style tracks and each track's normalisation); nothing of pymusly's is pickled. A stream that
this pymusly cannot read (another Musly version, another byte order) is rebuilt from the
stored tracks and style rows, to the same numbers (:func:`open_jukebox`).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from songsim.errors import MuslyNotInstalledError, SongsimError

__all__ = [
    "EXCERPT_MAX_START_S",
    "EXCERPT_S",
    "METHOD",
    "SR_HZ",
    "STYLE_MAX_TRACKS",
    "TRACK_DIM",
    "MuslyCollection",
    "analyse_clip",
    "build_collection",
    "musly_version",
    "open_jukebox",
    "upload_distances",
]

METHOD = "timbre"  # Musly's default and best method: MFCC Gaussian, Jensen-Shannon, mutual proximity
SR_HZ = 22_050  # the sample rate Musly analyses (mono float samples)
EXCERPT_S = 30.0  # seconds analysed per song (musly -a)
EXCERPT_MAX_START_S = 48.0  # the excerpt is centred but starts at this many seconds at the latest
STYLE_MAX_TRACKS = 1_000  # tracks that set the jukebox's style (all of a smaller catalogue)
TRACK_DIM = 351  # float32 values of a serialised timbre track: mu (25), covariance (325), log det (1)
#: the distance given where Musly's divergence is undefined (NaN): the farthest mutual proximity
UNDEFINED_DISTANCE = 1.0

_ANALYSIS_LOCK = threading.Lock()  # a jukebox's analysis buffers are shared: one clip at a time


def _pymusly() -> Any:
    try:
        import pymusly
    except ImportError as error:
        raise MuslyNotInstalledError(
            f"The musly space needs the pymusly package ({error}): pip install -r requirements.txt "
            "(pymusly==2.0.0, a 0.3 MB wheel with no dependencies)."
        ) from error
    return pymusly


def musly_version() -> str:
    """``"<libmusly version>/<pymusly version>"``: part of the feature cache key."""
    pymusly = _pymusly()
    return f"{pymusly.get_musly_version()}/{pymusly.__version__}"


def _new_jukebox() -> Any:
    return _pymusly().MuslyJukebox(METHOD)


@lru_cache(maxsize=1)
def _analysis_jukebox() -> Any:
    """A jukebox used only to analyse and (de)serialise tracks, one per process; its style is
    never set, so it holds no state a caller could change."""
    return _new_jukebox()


def analyse_clip(clip: np.ndarray) -> np.ndarray:
    """Musly's timbre model of one excerpt.

    Parameters
    ----------
    clip : np.ndarray [shape=(n_samples,)]
        Mono samples at :data:`SR_HZ` (22 050 Hz) in full-scale units: the excerpt Musly's
        command line would analyse (:data:`EXCERPT_S`, :data:`EXCERPT_MAX_START_S`).

    Returns
    -------
    np.ndarray [shape=(TRACK_DIM,), dtype=float32]
        The track as ``serialize_track`` writes it, in native byte order.

    Raises
    ------
    SongsimError
        Musly cannot model the excerpt (too few frames: under about 0.1 s), or its model is
        undefined (NaN: digital silence). The caller names the file.
    """
    samples = np.ascontiguousarray(clip, dtype=np.float32)
    pymusly = _pymusly()
    jukebox = _analysis_jukebox()
    try:
        with _ANALYSIS_LOCK:
            serialised = jukebox.serialize_track(jukebox.track_from_audiodata(samples))
    except pymusly.MuslyError as error:
        raise SongsimError(
            f"Musly cannot analyse its {samples.size / SR_HZ:.2f} s excerpt ({error}); give it a "
            "longer song with audible content."
        ) from None
    values = np.frombuffer(serialised, dtype=">f4").astype(np.float32)
    if values.shape != (TRACK_DIM,):
        raise SongsimError(f"Musly's {METHOD} track has {values.size} values, expected {TRACK_DIM}: reinstall pymusly==2.0.0.")
    if not np.isfinite(values).all():
        raise SongsimError(
            "Musly's timbre model of its excerpt is undefined (NaN: the excerpt Musly analyses, "
            f"30 s from {EXCERPT_MAX_START_S:g} s at the latest, is silent or nearly so); trim the silence or "
            "remove the file."
        )
    return values


def _tracks(jukebox: Any, values: np.ndarray) -> list[Any]:
    """MuslyTrack objects from (m, TRACK_DIM) float32 rows (``deserialize_track``)."""
    big_endian = np.ascontiguousarray(values, dtype=">f4")
    return [jukebox.deserialize_track(row.tobytes()) for row in big_endian]


def _similarities(jukebox: Any, seed: tuple[int, Any], pairs: list[tuple[int, Any]]) -> np.ndarray:
    distances = np.asarray(jukebox.compute_similarity(seed, pairs), dtype=np.float32)
    distances[~np.isfinite(distances)] = UNDEFINED_DISTANCE
    return distances


def style_rows(n_tracks: int, *, seed: int = 0) -> np.ndarray:
    """The rows that set the jukebox's style: every row of a catalogue of up to
    :data:`STYLE_MAX_TRACKS`, else that many drawn without replacement (``seed``), ascending.

    Returns
    -------
    np.ndarray [shape=(n_style,), dtype=int64]
    """
    if n_tracks <= STYLE_MAX_TRACKS:
        return np.arange(n_tracks, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_tracks, size=STYLE_MAX_TRACKS, replace=False)).astype(np.int64)


@dataclass(frozen=True)
class MuslyCollection:
    """A catalogue in Musly: its distances and the jukebox state that places new songs.

    Attributes
    ----------
    distances : np.ndarray [shape=(n_tracks, n_tracks), dtype=float32]
        Row i: the mutual-proximity distances from track i to every track (0 on the diagonal).
    jukebox : bytes
        ``serialize_to_stream`` of the jukebox (style tracks, every track's normalisation).
    style_rows : np.ndarray [shape=(n_style,), dtype=int64]
        The rows that set its style (:func:`style_rows`).
    """

    distances: np.ndarray
    jukebox: bytes
    style_rows: np.ndarray


def _initialised_jukebox(track_values: np.ndarray, rows: np.ndarray) -> tuple[Any, list[Any]]:
    """A fresh jukebox with its style set by ``rows`` and every track added (ids 0 .. n-1)."""
    jukebox = _new_jukebox()
    tracks = _tracks(jukebox, track_values)
    jukebox.set_style([tracks[int(i)] for i in rows])
    jukebox.add_tracks(list(enumerate(tracks)))
    return jukebox, tracks


def build_collection(track_values: np.ndarray, *, seed: int = 0) -> MuslyCollection:
    """Musly's jukebox over a catalogue and its full distance matrix (``musly -m``).

    Parameters
    ----------
    track_values : np.ndarray [shape=(n_tracks, TRACK_DIM), dtype=float32]
        Every track's :func:`analyse_clip`, in ``tracks.csv`` order.
    seed : int
        Draws the style tracks of a catalogue over :data:`STYLE_MAX_TRACKS`.

    Returns
    -------
    MuslyCollection
    """
    track_values = _checked_values(track_values, "catalogue")
    rows = style_rows(len(track_values), seed=seed)
    jukebox, tracks = _initialised_jukebox(track_values, rows)
    pairs = list(enumerate(tracks))
    distances = np.empty((len(tracks), len(tracks)), dtype=np.float32)
    for i, pair in enumerate(pairs):
        distances[i] = _similarities(jukebox, pair, pairs)
    stream = io.BytesIO()
    jukebox.serialize_to_stream(stream)
    return MuslyCollection(distances=distances, jukebox=stream.getvalue(), style_rows=rows)


def open_jukebox(state: bytes, track_values: np.ndarray, rows: np.ndarray) -> Any:
    """A fresh jukebox from its stored state (a new one per call: nothing shared is changed).

    ``state`` (``serialize_to_stream``) is read back when this pymusly can; otherwise (another
    Musly version or byte order) the jukebox is rebuilt from the stored tracks and style rows
    (:func:`build_collection`'s steps), which gives the same normalisations.
    """
    pymusly = _pymusly()
    try:
        jukebox = pymusly.MuslyJukebox.create_from_stream(io.BytesIO(state), True)
        if jukebox.method == METHOD and jukebox.track_count == len(track_values):
            return jukebox
    except pymusly.MuslyError:
        pass
    return _initialised_jukebox(track_values, rows)[0]


def upload_distances(
    upload_values: np.ndarray, *, state: bytes, track_values: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Distances from new songs to every catalogue track, through the stored jukebox.

    Each song is added to the jukebox under a new id (n, n+1, ...: its normalisation against
    the style tracks), then compared with every catalogue track -- the row Musly gives a
    song added to the collection. A song identical to catalogue track j gets track j's row
    except at j itself (a small positive distance instead of 0: to Musly it is another track).

    Parameters
    ----------
    upload_values : np.ndarray [shape=(m, TRACK_DIM), dtype=float32]
        The songs' :func:`analyse_clip`.
    state, track_values, rows
        The catalogue's :class:`MuslyCollection` ``jukebox``, its tracks
        ((n_tracks, TRACK_DIM) float32) and ``style_rows``.

    Returns
    -------
    np.ndarray [shape=(m, n_tracks), dtype=float32]
    """
    upload_values = _checked_values(upload_values, "upload")
    track_values = _checked_values(track_values, "catalogue")
    jukebox = open_jukebox(state, track_values, rows)
    catalogue = list(enumerate(_tracks(jukebox, track_values)))
    n_tracks = len(catalogue)
    new = [(n_tracks + j, track) for j, track in enumerate(_tracks(jukebox, upload_values))]
    if new:
        jukebox.add_tracks(new)
    distances = np.empty((len(new), n_tracks), dtype=np.float32)
    for j, pair in enumerate(new):
        distances[j] = _similarities(jukebox, pair, catalogue)
    return distances


def _checked_values(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != TRACK_DIM:
        raise ValueError(f"{what} Musly tracks must be (m, {TRACK_DIM}) float32, got shape {values.shape}")
    return values

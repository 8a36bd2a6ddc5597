"""The catalogue: ``DIR/tracks.csv`` plus the audio files it points at.

Only ``track_id`` and ``path`` are required (``path`` absolute, or relative to ``DIR``); every
label column is optional because real collections lack some. :func:`load_catalogue` checks
every row and raises one :class:`~songsim.errors.CatalogueError` that lists every bad row with
its line number in ``tracks.csv`` (line 1 is the header), so a user fixes them in one pass.

Row order everywhere in songsim (feature matrices, space vectors, map coordinates) follows
the row order of ``tracks.csv``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from songsim import config
from songsim.audio import audio_info, file_fingerprint
from songsim.errors import AudioError, CatalogueError, UnknownTrackError
from songsim.files import csv_original, read_json, write_json

TRACKS_CSV = "tracks.csv"
REQUIRED_COLUMNS = ("track_id", "path")
TEXT_LABELS = ("title", "artist", "album", "genre")
#: The 11 Spotify-style audio features. ``valence`` is shared with the emotion labels and is
#: stored on the DEAM 1–9 scale; :func:`spotify_valence` maps it to Spotify's 0–1.
SPOTIFY_FEATURES = (
    "danceability",
    "energy",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "time_signature",
)
#: Valid range of each numeric column, inclusive (units: dB for loudness, bpm for tempo).
NUMERIC_RANGES: dict[str, tuple[float, float]] = {
    "year": (1000, 2100),
    "valence": (1.0, 9.0),
    "arousal": (1.0, 9.0),
    "danceability": (0.0, 1.0),
    "energy": (0.0, 1.0),
    "loudness": (-80.0, 10.0),
    "mode": (0, 1),
    "speechiness": (0.0, 1.0),
    "acousticness": (0.0, 1.0),
    "instrumentalness": (0.0, 1.0),
    "liveness": (0.0, 1.0),
    "tempo": (1.0, 400.0),
    "time_signature": (1, 16),
}
#: Thayer quadrants of the valence/arousal plane.
EMOTIONS = ("happy", "calm", "angry", "sad")
EMOTION_THRESHOLD = 5.0  # midpoint of the DEAM 1–9 scale


def thayer_quadrant(valence: float, arousal: float, *, threshold: float = EMOTION_THRESHOLD) -> str:
    """The Thayer emotion quadrant of a (valence, arousal) pair on the DEAM 1–9 scale.

    happy: V > t, A > t; calm: V > t, A ≤ t; angry: V ≤ t, A > t; sad: V ≤ t, A ≤ t.
    """
    if valence > threshold:
        return "happy" if arousal > threshold else "calm"
    return "angry" if arousal > threshold else "sad"


def spotify_valence(valence_deam: np.ndarray | float) -> np.ndarray | float:
    """Map valence from the DEAM 1–9 scale to Spotify's 0–1 scale."""
    return (np.asarray(valence_deam, dtype=float) - 1.0) / 8.0


@dataclass(frozen=True)
class Catalogue:
    """A validated catalogue.

    Attributes
    ----------
    root : Path
        The catalogue folder (holds ``tracks.csv`` and ``.songsim/``).
    tracks : pandas.DataFrame [shape=(n_tracks, n_columns)]
        One row per track in ``tracks.csv`` order, index ``0..n-1``. ``path`` holds absolute
        paths; ``emotion`` is derived from valence/arousal where it was missing.
    """

    root: Path
    tracks: pd.DataFrame
    _row_by_id: dict[str, int] = field(repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._row_by_id.update({tid: i for i, tid in enumerate(self.tracks["track_id"])})

    def __len__(self) -> int:
        return len(self.tracks)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._row_by_id

    @property
    def track_ids(self) -> list[str]:
        """Track ids in row order."""
        return list(self.tracks["track_id"])

    def track_id_at(self, row: int) -> str:
        """The track id of catalogue row ``row`` (O(1), unlike indexing :attr:`track_ids`)."""
        return str(self.tracks["track_id"].iat[row])

    @property
    def derived_dir(self) -> Path:
        """``<root>/.songsim``: where every derived file of this catalogue lives."""
        return config.derived_dir(self.root)

    def row_of(self, track_id: str) -> int:
        """Row index of ``track_id``; :class:`UnknownTrackError` if the catalogue lacks it."""
        try:
            return self._row_by_id[str(track_id)]
        except KeyError:
            raise UnknownTrackError(
                f"Unknown track id {track_id!r} in {self.root / TRACKS_CSV}: "
                f"use one of its track_id values (e.g. {self.track_ids[0]!r})."
            ) from None

    def track(self, track_id: str) -> dict:
        """All columns of one track as a dict (missing labels are ``None``)."""
        row = self.tracks.iloc[self.row_of(track_id)]
        return {k: (None if _is_missing(v) else v) for k, v in row.items()}

    def has_labels(self, column: str) -> bool:
        """Whether ``column`` exists and at least one track has a value in it."""
        return column in self.tracks and bool(self.tracks[column].notna().any())

    def labels(self, column: str) -> np.ndarray:
        """``column`` as an object array (n_tracks,), ``None`` where missing."""
        if column not in self.tracks:
            return np.full(len(self), None, dtype=object)
        values = self.tracks[column].astype(object)
        return np.array([None if _is_missing(v) else v for v in values], dtype=object)

    def audio_fingerprints(self) -> list[str]:
        """Content fingerprint of every track's audio, in row order.

        Hashing reads every file, so results are cached in ``.songsim/file_hashes.json`` by
        (path, size, modification time): an unchanged file is never read twice.
        """
        cache_path = self.derived_dir / "file_hashes.json"
        cache = read_json(cache_path) or {}
        fingerprints, fresh = [], {}
        for path in self.tracks["path"]:
            stat = os.stat(path)
            key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
            fingerprints.append(cache.get(key) or file_fingerprint(Path(path)))
            fresh[key] = fingerprints[-1]
        if fresh != cache:
            write_json(cache_path, fresh)
        return fingerprints

    def fingerprint(self, audio_fingerprints: list[str] | None = None) -> str:
        """A hash of the track ids and their audio content: changes when any track does.

        Pass ``audio_fingerprints`` when already computed, to skip the cache look-up.
        """
        digest = hashlib.sha256()
        for track_id, audio in zip(self.track_ids, audio_fingerprints or self.audio_fingerprints()):
            digest.update(f"{track_id}\0{audio}\n".encode())
        return digest.hexdigest()[:20]


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


_COLUMN_NAME = re.compile(r"[\w .()/+-]{1,64}")
_KNOWN_COLUMNS = frozenset({*REQUIRED_COLUMNS, *TEXT_LABELS, "year", "emotion", *SPOTIFY_FEATURES, "arousal"})


def looks_like_a_header(columns: Sequence[object]) -> bool:
    """Whether a parsed first line is a CSV header whose names a message may list: it names a
    catalogue column, or at least two columns, each a short name. Any other file that pandas
    happens to parse (``/etc/shadow`` is a one-column "CSV") has its first line never echoed."""
    names = [str(c).strip() for c in columns]
    if {n.lower() for n in names} & _KNOWN_COLUMNS:
        return True
    return len(names) >= 2 and all(_COLUMN_NAME.fullmatch(n) for n in names)


def load_catalogue(root: str | Path, *, check_audio: bool = False) -> Catalogue:
    """Load and validate ``root/tracks.csv``.

    Parameters
    ----------
    root : str or Path
        The catalogue folder.
    check_audio : bool
        Also open every audio file's header (cheap, no decoding) to catch unreadable files.
        Without it only existence and extension are checked.

    Raises
    ------
    CatalogueError
        Listing every bad row with its line number: missing or unreadable file, unsupported
        format, empty or duplicate id, bad year or out-of-range label.
    """
    root = Path(root).expanduser().resolve()
    csv_path = root / TRACKS_CSV
    if not csv_path.is_file():
        raise CatalogueError(
            f"No {TRACKS_CSV} in {root}: create one with at least the columns track_id,path "
            f"(path absolute or relative to the folder), or make the demo with "
            f"`python -m songsim demo {root}`."
        )
    try:
        tracks = pd.read_csv(csv_path, dtype={"track_id": str, "path": str}, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise CatalogueError(f"{csv_path} is empty: add a header line track_id,path and one row per song.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise CatalogueError(f"{csv_path} is not a readable CSV file ({exc}): fix or re-export it.") from None
    tracks.columns = [str(c).strip() for c in tracks.columns]
    for column in tracks.columns:  # the text as written, not its formula escape (songsim.files)
        if tracks[column].dtype.kind not in "biufcmM":
            tracks[column] = tracks[column].map(csv_original)
    missing = [c for c in REQUIRED_COLUMNS if c not in tracks.columns]
    if missing and not looks_like_a_header(tracks.columns):
        raise CatalogueError(  # not a catalogue's CSV: its first line is not echoed (it could be any file's)
            f"{csv_path} is not a CSV file with a header row naming its columns: its first line must name at "
            "least track_id,path (track_id: a unique id; path: the audio file)."
        )
    if missing:
        raise CatalogueError(
            f"{csv_path} lacks the required column(s) {', '.join(missing)}; "
            f"its header is {', '.join(tracks.columns)}. Add them (track_id: a unique id; path: the audio file)."
        )
    if tracks.empty:
        raise CatalogueError(f"{csv_path} has a header but no tracks: add one row per song.")

    problems: list[str] = []
    tracks = tracks.reset_index(drop=True)
    tracks["track_id"] = tracks["track_id"].map(lambda v: "" if _is_missing(v) else str(v).strip())
    first_line_of: dict[str, int] = {}
    absolute_paths: list[str] = []
    for i, (track_id, rel_path) in enumerate(zip(tracks["track_id"], tracks["path"])):
        line = i + 2
        if not track_id:
            problems.append(f"line {line}: empty track_id")
        elif track_id in first_line_of:
            problems.append(f"line {line}: duplicate track_id {track_id!r} (first on line {first_line_of[track_id]})")
        else:
            first_line_of[track_id] = line
        if _is_missing(rel_path) or not str(rel_path).strip():
            problems.append(f"line {line}: empty path")
            absolute_paths.append("")
            continue
        path = Path(str(rel_path).strip()).expanduser()
        path = path if path.is_absolute() else root / path
        absolute_paths.append(str(path))
        problems.extend(f"line {line}: {msg}" for msg in _audio_file_problems(path, check_audio=check_audio))
    tracks["path"] = absolute_paths

    for column in TEXT_LABELS:
        if column in tracks:
            tracks[column] = tracks[column].map(lambda v: None if _is_missing(v) or not str(v).strip() else str(v).strip())
    for column, (low, high) in NUMERIC_RANGES.items():
        if column not in tracks:
            continue
        numeric = pd.to_numeric(tracks[column], errors="coerce")
        for i in np.flatnonzero((numeric.isna() & tracks[column].notna()).to_numpy()):
            problems.append(f"line {i + 2}: {column} {tracks[column].iloc[i]!r} is not a number")
        for i in np.flatnonzero(((numeric < low) | (numeric > high)).to_numpy()):
            problems.append(f"line {i + 2}: {column} {numeric.iloc[i]:g} is outside {low:g}–{high:g}")
        tracks[column] = numeric
    if "year" in tracks:
        for i in np.flatnonzero((tracks["year"].notna() & (tracks["year"] % 1 != 0)).to_numpy()):
            problems.append(f"line {i + 2}: year {tracks['year'].iloc[i]:g} is not a whole year")
        tracks["year"] = tracks["year"].astype("Int64")
    _fill_emotion(tracks, problems)

    if problems:
        shown = problems[:50]
        more = f"\n… and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise CatalogueError(
            f"{csv_path} has {len(problems)} problem(s); fix these rows and reload:\n"
            + "\n".join(f"  {p}" for p in shown)
            + more
        )
    return Catalogue(root=root, tracks=tracks)


def _audio_file_problems(path: Path, *, check_audio: bool) -> list[str]:
    if not path.is_file():
        return [f"audio file {path} does not exist"]
    if path.suffix.lower() not in config.AUDIO_EXTENSIONS:
        return [f"{path.name}: unsupported format {path.suffix!r} (use {', '.join(config.AUDIO_EXTENSIONS)})"]
    if check_audio:
        try:
            audio_info(path)
        except AudioError as exc:
            return [str(exc)]
    return []


def _fill_emotion(tracks: pd.DataFrame, problems: list[str]) -> None:
    """Validate ``emotion`` and derive it from valence/arousal where it is missing."""
    if "emotion" in tracks:
        tracks["emotion"] = tracks["emotion"].map(lambda v: None if _is_missing(v) or not str(v).strip() else str(v).strip().lower())
        for i, value in enumerate(tracks["emotion"]):
            if not _is_missing(value) and value not in EMOTIONS:
                problems.append(f"line {i + 2}: emotion {value!r} is not one of {', '.join(EMOTIONS)}")
    elif {"valence", "arousal"} <= set(tracks.columns):
        tracks["emotion"] = None
    if {"valence", "arousal"} <= set(tracks.columns):
        derived = [
            None if pd.isna(v) or pd.isna(a) else thayer_quadrant(float(v), float(a))
            for v, a in zip(tracks["valence"], tracks["arousal"])
        ]
        tracks["emotion"] = [d if _is_missing(given) else given for given, d in zip(tracks["emotion"], derived)]

"""Import a music collection as a songsim catalogue: write ``DIR/tracks.csv`` for its audio.

    python -m songsim import DIR --audio AUDIO_DIR [--metadata CSV ...] [--layout LAYOUT]

The audio stays where it is (nothing is moved or copied): ``path`` in ``tracks.csv`` is
relative to ``DIR`` when the audio lies inside ``DIR``, else absolute. The result is checked
with :func:`songsim.catalogue.load_catalogue` before :func:`import_collection` returns.

Layouts (:data:`LAYOUTS`)
-------------------------
``folders``  one sub-folder of ``AUDIO_DIR`` per genre (``rock/song.mp3``; Emotify-style);
             the top folder under ``AUDIO_DIR`` is the genre, files directly in it have none.
             Track id: the path relative to ``AUDIO_DIR`` without extension (``rock/song``).
``gtzan``    the same, with GTZAN's own ids: the file stem (``genres/blues/blues.00000.wav``
             → ``blues.00000``, genre ``blues``).
``flat``     every audio file under ``AUDIO_DIR`` (any depth), no genre from folder names.
``fma``      FMA: ``--metadata fma_metadata/tracks.csv`` (two header rows, ``album,album,…``
             then ``title,date_released,…``, optionally a third ``track_id,,,`` row) and audio
             as ``AUDIO_DIR/000/000002.mp3``. Id: FMA's track id (``2``). ``track.title`` →
             title, ``artist.name`` → artist, ``album.title`` → album, year from
             ``album.date_released``, else ``track.date_recorded``, else ``track.date_created``
             (FMA's upload date: a late proxy), ``track.genre_top`` → genre.
``deam``     DEAM: ``AUDIO_DIR/2.mp3`` (``MEMD_audio``) and ``--metadata`` the static
             annotations (``song_id, valence_mean, valence_std, arousal_mean, arousal_std``,
             leading spaces in headers are fine) on DEAM's 1–9 scale; repeat ``--metadata`` for
             both annotation files and the metadata CSVs (artist, title, genre).
``csv``      any CSV keyed by a track id and/or a file name (see the column synonyms below),
             holding metadata and/or the 11 Spotify-style features.
``auto``     (default) with ``--metadata``: ``fma`` if a file has FMA's two-row header,
             ``deam`` if one has DEAM's annotation columns, else ``csv``. Without: ``gtzan`` or
             ``folders`` when every audio file sits in a sub-folder one level down (``gtzan``
             when they are named ``<folder>.<number>``), else ``flat``.

Where each value comes from (first that has one wins)
----------------------------------------------------
1. the ``--metadata`` files, in the order given (several files are joined on the track id;
   a later file fills only what earlier ones lack);
2. the folder name (genre; ``folders``/``gtzan`` only);
3. the file's tags (title, artist, album, and year from the date tag), read by libsndfile
   for WAV (RIFF INFO), FLAC, OGG (Vorbis comments) and MP3 (ID3v1/ID3v2); genre tags are
   not used (free text of uneven quality: "Other", "(13)");
4. the file stem as title.

Column names are matched case-insensitively, ignoring spaces and punctuation, through
:data:`COLUMN_SYNONYMS` (e.g. ``artist_name``, ``track_name``, ``release_year`` /
``release_date``, ``genre_top`` / ``playlist_genre``, ``track_id`` / ``id`` / ``file``).
Other columns are ignored (the summary lists them). Missing labels are normal.

Valence and arousal scales
--------------------------
The catalogue stores valence and arousal on DEAM's 1–9 scale (the Thayer quadrant threshold
is 5; :func:`songsim.catalogue.spotify_valence` maps back to 0–1). DEAM-shaped files are
1–9. For any other file each of the two columns is read on the scale its values fit: all in
[0, 1] → Spotify's (and PMEmo's) 0–1, mapped as ``1 + 8 v``; all in [-1, 1] with a negative
value → a bipolar -1–1 scale, mapped as ``5 + 4 v``; otherwise 1–9 as is. The summary says
which scale was detected.

Problems
--------
Nothing the collection holds stops the import: each file or row that cannot be used is
skipped and reported by name with the reason (unreadable or corrupt audio, a file shorter
than 5 s or longer than 20 min, an unsupported format, a metadata row without audio, a
duplicate id or file), and each value that cannot be used (out of range, not a number, not
an emotion) is dropped from its track, which is imported without it. The import fails only
when no track at all can be imported. Every problem is returned in the
:class:`ImportReport` and written to ``DIR/import_problems.csv``.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import soundfile as sf

from songsim.audio import audio_info
from songsim.catalogue import (
    EMOTIONS,
    NUMERIC_RANGES,
    SPOTIFY_FEATURES,
    TEXT_LABELS,
    TRACKS_CSV,
    load_catalogue,
    looks_like_a_header,
)
from songsim.config import AUDIO_EXTENSIONS, require_under_roots
from songsim.errors import AudioError, OutsideRootsError, SongsimError
from songsim.files import atomic_write, csv_table_bytes

__all__ = [
    "COLUMN_SYNONYMS",
    "LAYOUTS",
    "PROBLEMS_CSV",
    "ImportProblem",
    "ImportReport",
    "detect_layout",
    "import_collection",
]

LAYOUTS = ("auto", "folders", "gtzan", "flat", "fma", "deam", "csv")
PROBLEMS_CSV = "import_problems.csv"

#: Catalogue column ← accepted CSV headers, most specific first. Headers are compared after
#: lower-casing and turning every run of non-alphanumerics into ``_`` (" Song title" → song_title).
COLUMN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "track_id": ("track_id", "trackid", "song_id", "songid", "id"),
    "file": ("path", "file", "filename", "file_name", "filepath", "file_path", "audio", "audio_path"),
    "title": ("title", "track_name", "track_title", "song_title", "song_name", "song", "track", "name"),
    "artist": ("artist", "artist_name", "track_artist", "artists", "performer"),
    "album": ("album", "album_name", "album_title", "track_album_name", "release"),
    "year": ("year", "release_year", "release_date", "track_album_release_date", "album_release_date", "date_released", "date"),
    "genre": ("genre", "genre_top", "playlist_genre", "track_genre", "top_genre"),
    "emotion": ("emotion",),
    "valence": ("valence", "valence_mean"),
    "arousal": ("arousal", "arousal_mean"),
    **{feature: (feature,) for feature in SPOTIFY_FEATURES if feature != "valence"},
}
#: The value columns an import can fill, in ``tracks.csv`` order.
VALUE_COLUMNS = (*TEXT_LABELS, "year", "emotion", "valence", "arousal", *(f for f in SPOTIFY_FEATURES if f != "valence"))
_TAG_COLUMNS = ("title", "artist", "album", "year")
#: extensions of audio that songsim cannot decode: reported, while other files (.txt, .jpg) are ignored
_OTHER_AUDIO = (".m4a", ".aac", ".mp4", ".wma", ".aif", ".aiff", ".opus", ".ape", ".wv", ".mp2", ".au", ".webm", ".alac")
_HEADER_THREADS = 8  # reading file headers waits on the disk more than on the CPU
#: valence/arousal scale → (map to the catalogue's 1–9, description)
_SCALES = {
    "1-9": (lambda v: v, "the 1–9 (DEAM) scale, kept as is"),
    "0-1": (lambda v: 1.0 + 8.0 * v, "a 0–1 scale (Spotify-style), mapped to 1–9 as 1 + 8·v"),
    "-1-1": (lambda v: 5.0 + 4.0 * v, "a -1–1 scale, mapped to 1–9 as 5 + 4·v"),
}
_FMA_FIELDS = {
    "title": [("track", "title")],
    "artist": [("artist", "name")],
    "album": [("album", "title")],
    "year": [("album", "date_released"), ("track", "date_recorded"), ("track", "date_created")],
    "genre": [("track", "genre_top")],
}

ProgressFn = Callable[[int, int, str], None]


# --------------------------------------------------------------------------------------------
# the report


@dataclass(frozen=True)
class ImportProblem:
    """A file, metadata row or value that the import could not use.

    Attributes
    ----------
    item : str
        The audio file (relative to the audio folder) or metadata row (``annotations.csv
        song_id=12``) at fault.
    kind : str
        A short class of problem, used to group the summary (``"unreadable audio"``,
        ``"no audio for row"``, ``"bad value"``, …).
    reason : str
        What is wrong, and where it helps, the fix.
    action : str
        ``"skipped"`` (not imported) or ``"value dropped"`` (imported without that value).
    """

    item: str
    kind: str
    reason: str
    action: str = "skipped"


@dataclass
class ImportReport:
    """What :func:`import_collection` did.

    Attributes
    ----------
    csv_path : Path
        The ``tracks.csv`` written.
    layout : str
        The layout used (the detected one for ``"auto"``).
    n_tracks : int
        Tracks written.
    n_audio_files : int
        Supported audio files found under the audio folder.
    n_metadata_rows : int
        Rows read from the metadata files.
    label_counts : dict[str, int]
        Tracks with a value, per value column written.
    notes : list[str]
        How things were read (detected scales, ignored columns, files without metadata).
    problems : list[ImportProblem]
        Every file, row or value not used, in discovery order.
    """

    csv_path: Path
    layout: str
    n_tracks: int
    n_audio_files: int
    n_metadata_rows: int
    label_counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def problems_csv(self) -> Path | None:
        """``DIR/import_problems.csv`` when there were problems, else ``None``."""
        return self.csv_path.parent / PROBLEMS_CSV if self.problems else None

    def as_dict(self) -> dict:
        """A JSON-ready dict of the report."""
        return {
            "csv_path": str(self.csv_path), "layout": self.layout, "n_tracks": self.n_tracks,
            "n_audio_files": self.n_audio_files, "n_metadata_rows": self.n_metadata_rows,
            "label_counts": dict(self.label_counts), "notes": list(self.notes),
            "problems": [vars(p) for p in self.problems],
        }

    def format(self, *, max_per_kind: int = 20) -> str:
        """A human summary: counts, notes, then every problem by name (at most
        ``max_per_kind`` of each kind; the full list is in :attr:`problems_csv`)."""
        labels = ", ".join(f"{column} {count}" for column, count in self.label_counts.items()) or "none"
        lines = [
            f"Imported {self.n_tracks} tracks into {self.csv_path} (layout {self.layout}; "
            f"{self.n_audio_files} audio files, {self.n_metadata_rows} metadata rows).",
            f"Tracks with each label: {labels}.",
        ]
        lines += [f"  note: {note}" for note in self.notes]
        if not self.problems:
            return "\n".join(lines + ["Every file and row was used."])
        skipped = sum(p.action == "skipped" for p in self.problems)
        lines.append(
            f"Could not use {skipped} file(s) or row(s); dropped {len(self.problems) - skipped} value(s) "
            f"(all listed in {self.problems_csv}):"
        )
        by_kind: dict[str, list[ImportProblem]] = {}
        for problem in self.problems:
            by_kind.setdefault(problem.kind, []).append(problem)
        for kind, problems in by_kind.items():
            lines.append(f"  {kind} ({len(problems)}, {problems[0].action}):")
            lines += [f"    {p.item}: {p.reason}" for p in problems[:max_per_kind]]
            if len(problems) > max_per_kind:
                lines.append(f"    … and {len(problems) - max_per_kind} more")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# audio files


@dataclass(frozen=True)
class _AudioFile:
    path: Path  # absolute
    rel: PurePosixPath  # relative to the audio folder (just the name for a file outside it)

    @property
    def rel_stem(self) -> str:
        return str(self.rel.with_suffix(""))


def _scan_audio(audio_dir: Path) -> tuple[list[_AudioFile], list[ImportProblem]]:
    """Every supported audio file under ``audio_dir`` (sorted, hidden files and folders
    skipped), and a problem for each file in an audio format songsim cannot read."""
    found, problems = [], []
    for folder, dirs, files in os.walk(audio_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):  # also macOS "._x.wav" resource forks
                continue
            path = Path(folder) / name
            rel = PurePosixPath(path.relative_to(audio_dir).as_posix())
            suffix = path.suffix.lower()
            if suffix in AUDIO_EXTENSIONS:
                found.append(_AudioFile(path, rel))
            elif suffix in _OTHER_AUDIO:
                problems.append(ImportProblem(
                    str(rel), "unsupported format",
                    f"{suffix} cannot be decoded here (songsim reads {', '.join(AUDIO_EXTENSIONS)}); "
                    f"convert it, e.g. ffmpeg -i '{name}' '{path.stem}.flac'",
                ))
    return found, problems


class _AudioLookup:
    """Find an audio file by relative path, name, path stem or file stem."""

    def __init__(self, files: Sequence[_AudioFile], audio_dir: Path, roots: Sequence[Path] | None = None) -> None:
        self.audio_dir = audio_dir
        self.roots = None if roots is None else list(roots)
        self.by_rel = {str(f.rel): f for f in files}
        self.by_rel_stem: dict[str, list[_AudioFile]] = {}
        self.by_name: dict[str, list[_AudioFile]] = {}
        self.by_stem: dict[str, list[_AudioFile]] = {}
        for f in files:
            self.by_rel_stem.setdefault(f.rel_stem, []).append(f)
            self.by_name.setdefault(f.rel.name, []).append(f)
            self.by_stem.setdefault(f.rel.stem, []).append(f)

    def find(self, *, file: str | None, stem: str | None) -> tuple[_AudioFile | None, str]:
        """The file a metadata row names, or ``(None, reason)``."""
        if file:
            given = file.strip().replace("\\", "/")
            path = Path(given).expanduser()
            if path.is_absolute():
                if self.roots is not None:
                    try:  # before looking at it: whether it exists is not told either
                        path = require_under_roots(path, what="audio file", roots=self.roots)
                    except OutsideRootsError:
                        return None, f"audio file {given} is outside the folders this app may read"
                if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file():
                    return _AudioFile(path, PurePosixPath(path.name)), ""
                return None, f"audio file {given} does not exist or is not {'/'.join(AUDIO_EXTENSIONS)}"
            if given in self.by_rel:
                return self.by_rel[given], ""
            tables = (self.by_rel_stem, self.by_name, self.by_stem)
            keys = (given, PurePosixPath(given).name, PurePosixPath(given).stem)
            what = f"audio file {given!r}"
        else:
            tables, keys, what = (self.by_rel_stem, self.by_stem), (stem, stem), f"audio file named {stem!r}"
        for table, key in zip(tables, keys):
            matches = table.get(key or "", [])
            if len(matches) == 1:
                return matches[0], ""
            if len(matches) > 1:
                return None, f"{what} is ambiguous: {', '.join(str(m.rel) for m in matches[:3])}"
        return None, f"no {what} under {self.audio_dir}"


def _probe(audio: _AudioFile, want_tags: bool) -> tuple[str | None, dict[str, str]]:
    """Check the header (decodable, 5 s – 20 min) and read tags; ``(error or None, tags)``."""
    try:
        audio_info(audio.path, name=str(audio.rel), check_duration_limits=True)
    except AudioError as exc:
        message = str(exc)
        return message.removeprefix(f"{audio.rel}: "), {}
    if not want_tags:
        return None, {}
    try:
        with sf.SoundFile(audio.path) as handle:
            tags = handle.copy_metadata()
    except (sf.SoundFileError, RuntimeError):  # tags are a bonus: an unreadable tag block is no error
        tags = {}
    return None, {k: v for k, v in tags.items() if v and v.strip()}


# --------------------------------------------------------------------------------------------
# metadata files


@dataclass
class _Table:
    """One metadata file, its rows mapped to catalogue columns (raw text values)."""

    name: str
    kind: str  # "fma", "deam" or "csv"
    key_column: str | None
    rows: list[dict[str, str | None]]  # "_key", "_file", "_stem", "_item" and value columns
    scales: dict[str, str]  # "valence"/"arousal" → a key of _SCALES
    ignored: list[str]


def _normalise_header(header: object) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(header).strip().lower()).strip("_")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        return path.read_text(encoding="latin-1")
    except OSError as exc:
        raise SongsimError(f"Cannot read metadata file {path} ({exc}): check the path given to --metadata.") from None


def _sniff_kind(text: str) -> str:
    """``"fma"`` (two header rows), ``"deam"`` (static annotation columns) or ``"csv"``."""
    rows = list(csv.reader(io.StringIO("\n".join(text.splitlines()[:2]))))
    first = {_normalise_header(c) for c in rows[0]} if rows else set()
    second = {_normalise_header(c) for c in rows[1]} if len(rows) > 1 else set()
    if "track" in first and first <= {"", "album", "artist", "set", "track"} and "title" in second:
        return "fma"
    if "song_id" in first and {"valence_mean", "arousal_mean"} & first:
        return "deam"
    return "csv"


def _clean(value: object) -> str | None:
    """A stripped cell value, ``None`` when missing or blank."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _read_table(path: Path) -> _Table:
    text = _read_text(path)
    if not text.strip():
        raise SongsimError(f"Metadata file {path} is empty: give a CSV with a header row.")
    kind = _sniff_kind(text)
    try:
        if kind == "fma":
            return _fma_table(path, text)
        return _csv_table(path, text, kind)
    except pd.errors.ParserError as exc:  # "Expected 3 fields in line 5, saw 4": positions, no content
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise SongsimError(f"Metadata file {path} is not a readable CSV ({reason}): fix or re-export it.") from None
    except (ValueError, IndexError):  # a message that may quote the file: not shown
        raise SongsimError(f"Metadata file {path} is not a CSV file with a header row: fix or re-export it.") from None


def _fma_table(path: Path, text: str) -> _Table:
    """FMA's ``tracks.csv``: two header rows (group, field), the track id in column 0."""
    frame = pd.read_csv(io.StringIO(text), header=[0, 1], index_col=0, dtype=str)
    position = {(str(group).strip(), str(name).strip()): i for i, (group, name) in enumerate(frame.columns)}
    cells = {  # only the columns used, as lists: iterating rows of 50-odd columns is slow
        source: frame.iloc[:, position[source]].tolist()
        for sources in _FMA_FIELDS.values() for source in sources if source in position
    }
    rows = []
    for i, key in enumerate(frame.index.tolist()):
        key = _clean(key)
        row: dict[str, str | None] = {"_key": key, "_file": None, "_item": f"{path.name} track_id={key}"}
        row["_stem"] = f"{int(key):06d}" if key and key.isdigit() else key
        for column, sources in _FMA_FIELDS.items():
            row[column] = next((v for v in (_clean(cells[s][i]) for s in sources if s in cells) if v), None)
        rows.append(row)
    return _Table(path.name, "fma", "track_id", rows, {}, [])


def _csv_table(path: Path, text: str, kind: str) -> _Table:
    """Any other CSV: headers mapped through :data:`COLUMN_SYNONYMS`."""
    first_line = text.splitlines()[0]
    try:
        delimiter = csv.Sniffer().sniff(first_line, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, skipinitialspace=True)
    normalised = {_normalise_header(c): c for c in reversed(frame.columns)}  # first of duplicates wins
    mapping = {}
    for column, synonyms in COLUMN_SYNONYMS.items():
        source = next((normalised[s] for s in synonyms if s in normalised), None)
        if source is not None and source not in mapping.values():
            mapping[column] = source
    if "track_id" not in mapping and "file" not in mapping:
        if not mapping and not looks_like_a_header(frame.columns):  # not a CSV (/etc/shadow): its first line is not echoed
            raise SongsimError(
                f"Metadata file {path} is not a CSV file with a header row naming its columns (none is a column "
                "songsim knows): give a CSV whose first line names a track_id, id, song_id, file or filename "
                "column and labels such as title, artist, genre."
            )
        raise SongsimError(
            f"Metadata file {path} has no track id or file column (its header is "
            f"{', '.join(map(str, frame.columns))}): name one track_id, id, song_id, file or filename."
        )
    key_column = mapping.get("track_id") or mapping["file"]
    cells = {column: frame[source].tolist() for column, source in mapping.items()}
    blank = [None] * len(frame)
    keys, files = cells.pop("track_id", blank), cells.pop("file", blank)
    rows = []
    for i in range(len(frame)):
        row = {column: _clean(values[i]) for column, values in cells.items()}
        key, file = _clean(keys[i]), _clean(files[i])
        if key is not None or file is not None:
            named_by = mapping["track_id"] if key is not None else mapping["file"]
            item = f"{path.name} {str(named_by).strip()}={key if key is not None else file}"
        else:
            item = f"{path.name} line {i + 2}"
        rows.append({"_key": key, "_file": file, "_stem": key, "_item": item, **row})
    scales = {}
    for column in ("valence", "arousal"):
        if column in mapping:
            numbers = pd.to_numeric(frame[mapping[column]], errors="coerce").dropna()
            scales[column] = "1-9" if kind == "deam" else _detect_scale(numbers.to_numpy())
    ignored = [str(c).strip() for c in frame.columns if c not in mapping.values()]
    return _Table(path.name, kind, str(key_column).strip(), rows, scales, ignored)


def _detect_scale(values: np.ndarray) -> str:
    """The valence/arousal scale a column's values fit (see the module docstring)."""
    if values.size and values.min() >= 0.0 and values.max() <= 1.0:
        return "0-1"
    if values.size and values.min() < 0.0 and values.min() >= -1.0 and values.max() <= 1.0:
        return "-1-1"
    return "1-9"


# --------------------------------------------------------------------------------------------
# layouts


def detect_layout(audio_files: Sequence[PurePosixPath], metadata_kinds: Sequence[str]) -> str:
    """The layout ``auto`` stands for (see the module docstring).

    Parameters
    ----------
    audio_files : sequence of PurePosixPath
        Audio files relative to the audio folder.
    metadata_kinds : sequence of str
        ``"fma"``, ``"deam"`` or ``"csv"`` for each metadata file.

    Returns
    -------
    str
        One of :data:`LAYOUTS` other than ``"auto"``.
    """
    for kind in ("fma", "deam", "csv"):
        if kind in metadata_kinds:
            return kind
    if audio_files and all(len(f.parts) == 2 for f in audio_files):
        if all(re.fullmatch(rf"{re.escape(f.parts[0])}\.\d+", f.stem) for f in audio_files):
            return "gtzan"
        if all(re.fullmatch(r"\d{3}", f.parts[0]) and re.fullmatch(r"\d{6}", f.stem) for f in audio_files):
            raise SongsimError(
                "The audio folder looks like FMA audio (000/000002.mp3) but no metadata was given: "
                "pass --metadata fma_metadata/tracks.csv (or --layout flat to import it without labels)."
            )
        return "folders"
    return "flat"


def _file_ids(files: Iterable[_AudioFile], layout: str, taken: set[str]) -> dict[Path, str]:
    """Track ids of files without a metadata row: GTZAN's stem, else the relative path without
    extension; where two files (or a metadata id) would share one, the relative path with it."""
    files = list(files)
    base = {f.path: (f.rel.stem if layout == "gtzan" else f.rel_stem) for f in files}
    counts = Counter(base.values())
    return {f.path: (str(f.rel) if counts[base[f.path]] > 1 or base[f.path] in taken else base[f.path]) for f in files}


# --------------------------------------------------------------------------------------------
# values


def _year(text: str) -> float | None:
    match = re.search(r"(?<!\d)(\d{4})(?!\d)", text)
    return float(match.group(1)) if match else None


def _clean_values(raw: dict[str, str | None], scales: dict[str, str], item: str) -> tuple[dict, list[ImportProblem]]:
    """Typed, range-checked values of one track; a problem for each value dropped."""
    values: dict[str, object] = {}
    problems = []

    def drop(column: str, reason: str) -> None:
        problems.append(ImportProblem(item, "bad value", f"{column} {reason}", "value dropped"))

    for column in VALUE_COLUMNS:
        text = raw.get(column)
        if text is None:
            continue
        if column in TEXT_LABELS:
            values[column] = text
        elif column == "emotion":
            if text.lower() in EMOTIONS:
                values[column] = text.lower()
            else:
                drop(column, f"{text!r} is not one of {', '.join(EMOTIONS)}")
        else:
            number = _year(text) if column == "year" else pd.to_numeric(text, errors="coerce")
            if number is None or not np.isfinite(number):
                drop(column, f"{text!r} is not a {'year' if column == 'year' else 'number'}")
                continue
            scale = scales.get(column, "1-9")  # only valence and arousal have a scale to map
            number = round(float(_SCALES[scale][0](float(number))), 4)
            low, high = NUMERIC_RANGES[column]
            if not low <= number <= high:
                shown = f"{text} (→ {number:g} on 1–9)" if scale != "1-9" else text
                drop(column, f"{shown} is outside {low:g}–{high:g}")
                continue
            values[column] = int(number) if column == "year" else number
    return values, problems


# --------------------------------------------------------------------------------------------
# the import


def import_collection(
    root: str | os.PathLike,
    audio_dir: str | os.PathLike,
    *,
    metadata: Sequence[str | os.PathLike] = (),
    layout: str = "auto",
    replace: bool = False,
    on_progress: ProgressFn | None = None,
    roots: Sequence[str | os.PathLike] | None = None,
) -> ImportReport:
    """Write ``root/tracks.csv`` for the audio under ``audio_dir``; see the module docstring.

    Parameters
    ----------
    root : path-like
        The catalogue folder (created if missing).
    audio_dir : path-like
        The folder holding the audio (searched recursively; hidden files are skipped).
    metadata : sequence of path-like
        CSV files of labels, joined on the track id (FMA ``tracks.csv``, DEAM annotations,
        any CSV with recognised column names).
    layout : str
        One of :data:`LAYOUTS`.
    replace : bool
        Overwrite an existing ``root/tracks.csv`` (written atomically: an interrupted import
        keeps the old one). Without it an existing ``tracks.csv`` is an error.
    on_progress : callable or None
        ``on_progress(done, total, message)`` while audio files are checked.
    roots : sequence of path-like, optional
        The folders the import may read and write (the app passes
        :func:`songsim.config.allowed_roots`): ``root``, ``audio_dir`` and every metadata file
        must resolve (symlinks and ``..`` first) under one of them, else nothing is read or
        created; absolute audio paths in metadata rows outside them are skipped. ``None``
        (the command line): not limited.

    Returns
    -------
    ImportReport
        Also written: ``root/import_problems.csv`` (item, kind, action, reason) when there
        were problems; a stale one is removed otherwise.

    Raises
    ------
    SongsimError
        The audio folder or a metadata file is missing or unreadable, the layout is unknown
        or lacks the metadata it needs, ``tracks.csv`` exists without ``replace``, or no track
        could be imported (the message summarises why).
    OutsideRootsError
        With ``roots``: a folder or metadata file outside them.
    """
    if roots is not None:
        roots = [Path(r).expanduser().resolve() for r in roots]
        root = require_under_roots(root, what="The catalogue folder", roots=roots)
        audio_dir = require_under_roots(audio_dir, what="The audio folder", roots=roots)
        metadata = [require_under_roots(m, what="The metadata file", roots=roots) for m in metadata]
    root = Path(root).expanduser().resolve()
    audio_dir = Path(audio_dir).expanduser().resolve()
    if layout not in LAYOUTS:
        raise SongsimError(f"Unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}.")
    if not audio_dir.is_dir():
        raise SongsimError(f"Audio folder {audio_dir} does not exist: give the folder that holds the audio files.")
    if (root / TRACKS_CSV).exists() and not replace:
        raise SongsimError(
            f"{root / TRACKS_CSV} already exists: pass --replace (replace=True) to re-import over it (the build "
            "cache is kept: the next build analyses only new or changed audio), or import into another folder."
        )
    tables = [_read_table(Path(p).expanduser().resolve()) for p in metadata]
    files, problems = _scan_audio(audio_dir)
    if layout == "auto":
        layout = detect_layout([f.rel for f in files], [t.kind for t in tables])
    needs = {"fma": "an FMA tracks.csv (two header rows)", "deam": "DEAM's static annotations CSV", "csv": "a CSV of metadata"}
    if layout in needs and not [t for t in tables if layout == "csv" or t.kind == layout]:
        raise SongsimError(f"Layout {layout} needs {needs[layout]}: pass it with --metadata.")

    notes: list[str] = []
    tracks, table_problems = _match_tables(tables, _AudioLookup(files, audio_dir, roots), layout, notes)
    problems += table_problems
    used = {t["_audio"].path for t in tracks.values()}
    unmatched = [f for f in files if f.path not in used]
    if tables and unmatched:
        notes.append(f"{len(unmatched)} audio files have no metadata row: imported with labels from tags only")
    ids = _file_ids(unmatched, layout, set(tracks))
    for audio in unmatched:
        if ids[audio.path] in tracks:
            problems.append(ImportProblem(str(audio.rel), "duplicate", f"track id {ids[audio.path]!r} is already used"))
        else:
            tracks[ids[audio.path]] = {"_audio": audio, "_item": str(audio.rel), "_scales": {}}
    if layout in ("folders", "gtzan"):
        for track in tracks.values():
            if len(track["_audio"].rel.parts) > 1 and not track.get("genre"):
                track["genre"] = track["_audio"].rel.parts[0]

    rows, probe_problems = _probe_all(tracks, on_progress)
    problems += probe_problems
    if not rows:
        kinds = Counter(p.kind for p in problems if p.action == "skipped")
        why = "; ".join(f"{n} {kind}" for kind, n in kinds.items()) or f"no {'/'.join(AUDIO_EXTENSIONS)} files found"
        raise SongsimError(f"No track could be imported from {audio_dir} ({why}). Check --audio, --metadata and --layout.")
    csv_path = _write(root, rows, problems)
    load_catalogue(root)  # the contract: what was written loads
    counts = {c: sum(c in r for r in rows) for c in VALUE_COLUMNS if any(c in r for r in rows)}
    return ImportReport(csv_path, layout, len(rows), len(files), sum(len(t.rows) for t in tables), counts, notes, problems)


def _match_tables(
    tables: Sequence[_Table], lookup: _AudioLookup, layout: str, notes: list[str]
) -> tuple[dict[str, dict], list[ImportProblem]]:
    """Tracks (id → raw values and audio file) from the metadata rows that have audio."""
    tracks: dict[str, dict] = {}
    by_audio: dict[Path, str] = {}
    problems = []
    for table in tables:
        for column, scale in table.scales.items():
            notes.append(f"{table.name}: {column} read on {_SCALES[scale][1]}")
        if table.ignored:
            shown = ", ".join(table.ignored[:12]) + (f" and {len(table.ignored) - 12} more" if len(table.ignored) > 12 else "")
            notes.append(f"{table.name}: columns not used: {shown}")
        seen: set[str] = set()
        for row in table.rows:
            values = {k: v for k, v in row.items() if not k.startswith("_") and v is not None}
            key = row["_key"]
            if key is not None and key in seen:
                problems.append(ImportProblem(row["_item"], "duplicate", f"{table.key_column} {key!r} appears again in {table.name}; the first row is kept"))
                continue
            if key is not None:
                seen.add(key)
            if key in tracks:  # a further file about a known track fills what is missing
                track = tracks[key]
                for column, value in values.items():
                    if column not in track:
                        track[column] = value
                        if column in table.scales:
                            track["_scales"][column] = table.scales[column]
                continue
            audio, reason = lookup.find(file=row["_file"], stem=row["_stem"])
            if audio is None:
                problems.append(ImportProblem(row["_item"], "no audio for row", reason))
                continue
            if audio.path in by_audio:
                problems.append(ImportProblem(row["_item"], "duplicate", f"{audio.rel} is already the audio of track {by_audio[audio.path]!r}"))
                continue
            track_id = key if key is not None else _file_ids([audio], layout, set())[audio.path]
            if track_id in tracks:
                problems.append(ImportProblem(row["_item"], "duplicate", f"track id {track_id!r} is already used"))
                continue
            by_audio[audio.path] = track_id
            tracks[track_id] = {"_audio": audio, "_item": row["_item"], "_scales": dict(table.scales), **values}
    return tracks, problems


def _probe_all(tracks: dict[str, dict], on_progress: ProgressFn | None) -> tuple[list[dict], list[ImportProblem]]:
    """Check every track's audio (in threads), fill tags and stems, type the values."""
    items = list(tracks.items())
    wants = [any(c not in t for c in _TAG_COLUMNS) for _, t in items]
    rows, problems = [], []
    with ThreadPoolExecutor(max_workers=_HEADER_THREADS) as pool:
        results = pool.map(_probe, [t["_audio"] for _, t in items], wants)
        for done, ((track_id, track), (error, tags)) in enumerate(zip(items, results), start=1):
            audio = track["_audio"]
            if on_progress is not None:
                on_progress(done, len(items), str(audio.rel))
            if error is not None:
                problems.append(ImportProblem(str(audio.rel), "unreadable audio", error))
                continue
            raw = {c: v for c, v in track.items() if not c.startswith("_")}
            scales = dict(track["_scales"])
            for column in _TAG_COLUMNS:
                tag = tags.get("date" if column == "year" else column)
                if column not in raw and tag:
                    raw[column] = tag.strip()
            raw.setdefault("title", audio.path.stem)
            values, value_problems = _clean_values(raw, scales, track["_item"])
            problems += value_problems
            rows.append({"track_id": track_id, "path": audio.path, **values})
    return rows, problems


def _write(root: Path, rows: list[dict], problems: list[ImportProblem]) -> Path:
    """Write ``tracks.csv`` (paths relative to ``root`` when inside it) and the problem list."""
    root.mkdir(parents=True, exist_ok=True)
    columns = ["track_id", "path", *(c for c in VALUE_COLUMNS if any(c in r for r in rows))]
    frame = pd.DataFrame(rows, columns=columns)
    frame["path"] = [p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p) for p in frame["path"]]
    if "year" in frame:
        frame["year"] = frame["year"].astype("Int64")
    csv_path = root / TRACKS_CSV
    with atomic_write(csv_path) as handle:
        handle.write(csv_table_bytes(frame, lineterminator="\n"))
    problems_path = root / PROBLEMS_CSV
    if problems:
        table = pd.DataFrame([vars(p) for p in problems], columns=["item", "kind", "action", "reason"])
        with atomic_write(problems_path) as handle:
            handle.write(csv_table_bytes(table, lineterminator="\n"))
    else:
        problems_path.unlink(missing_ok=True)
    return csv_path

"""Imported spaces: a researcher's own vectors for the catalogue's tracks, judged like any space.

``python -m songsim space import DIR --name NAME --vectors FILE [--ids FILE]`` (or the Models
page) reads one vector per track from a file, validates it against ``tracks.csv`` and stores it
in ``<catalogue>/.songsim/spaces/<NAME>/`` as ``vectors.npy`` (float32, one row per covered
track) and ``meta.json`` (origin ``"imported"``, description, metric, the source file, and the
track id of each stored row). Nothing is pickled and nothing from the file is executed: opening it is reading numbers.

Formats (by extension):

``.npy``      an (n, dim) array, with ``--ids FILE``: one track id (or audio path) per line
``.npz``      arrays ``ids`` (n,) and ``vectors`` (n, dim)
``.csv``      a ``track_id`` column (or ``id``, ``path``) and one numeric column per dimension
``.parquet``  the same columns
``.tsv``      the TensorBoard-Projector pair: ``vectors.tsv`` (one tab-separated row per vector,
              no header) with ``--ids metadata.tsv`` (one label per line, or a header row and a
              ``track_id``/``id``/``path`` column)

An id is a track id of ``tracks.csv`` or the audio path it gives (as written there, relative to
the folder, or absolute). Unknown or duplicated ids, non-finite values, ragged rows and a wrong
dimension are refused before anything is stored, each named with file, row and the fix. Tracks
the file lacks are listed, get no vector (``covered_`` is False there), and are left out of
every search, map, figure and study pool of the space. Re-importing a changed file changes the
space's fit key, so its maps become stale; studies keep the runs they stored.

An imported space cannot embed a song that is not in the catalogue (there is no model), so it
has ``embeds_uploads = False``: Explore and the CLI say so and name the spaces that can.

Distance matrices
-----------------
``python -m songsim space import DIR --name NAME --distances FILE`` (or the Models page)
imports a system that gives distances rather than vectors, as MIREX participants submitted
them: a tab-separated ``N × N`` matrix (``.tsv`` or ``.txt``) whose first row names the
tracks of the columns and whose first column names the track of each row; the corner cell
is ignored (MIREX writes ``Q/R``)::

    Q/R      pads-00  pads-01  drums-00
    pads-00  0        0.31     2.5
    pads-01  0.29     0        2.2
    drums-00 2.4      2.6      0

Entry ``(i, j)`` is how far the column's track is from the row's (query) track in the
system's own units: smaller = closer, non-negative, finite. The matrix need not be
symmetric (row = query) and its diagonal is never used (a track is never its own
neighbour). The columns may list the tracks in another order than the rows (they are
reordered), but must name the same tracks. MIREX's full file is read too: an optional first
line (the system's name) and one ``key<TAB>file`` line per track before the ``Q/R`` row,
the matrix then naming tracks by key. Names are track ids or audio paths, as for vectors.

Refused, each with file, line, track and the fix: a missing header row, ragged rows, a
non-square matrix, non-numbers, empty cells, NaN/inf, negative distances, a track named
twice (in the rows or in the first row), rows and columns naming different tracks, unknown
tracks, more than :data:`MAX_DISTANCE_TRACKS` tracks. Tracks the matrix lacks are listed and
left out, as for vectors. The file is parsed by pandas' C reader into float32 (a 10 000-track
matrix, ~1 GB of text, is 400 MB in memory; reading it takes seconds).

The space is stored as ``distances.npy`` ((n_covered, n_covered) float32, covered tracks in
``tracks.csv`` order) and its metric is ``"precomputed"``
(:data:`songsim.neighbours.PRECOMPUTED`): ``vectors_`` is the ``(n_tracks, n_tracks)``
matrix (row i = distances from track i; uncovered rows and columns hold the largest
distance as a finite filler and are excluded through ``covered_``), neighbours come from
its rows (:class:`songsim.neighbours.PrecomputedIndex`), maps from the distances
(:mod:`songsim.maps`: classical MDS in place of PCA, UMAP and t-SNE precomputed), and
``evaluate``, studies and ``add-space`` work unchanged.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from songsim.catalogue import Catalogue
from songsim.errors import ImportedSpaceError, NotBuiltError
from songsim.files import atomic_write, read_json, write_json
from songsim.neighbours import METRICS, PRECOMPUTED
from songsim.spaces.base import Space

VECTORS_FILE = "vectors.npy"
#: what an imported distance matrix is stored as (covered tracks × covered tracks, float32)
DISTANCES_FILE = "distances.npy"
ORIGIN = "imported"
FORMATS = (".npy", ".npz", ".csv", ".parquet", ".tsv")
#: extensions of a distance matrix (tab-separated text, whatever the extension says)
DISTANCE_FORMATS = (".tsv", ".txt")
#: the largest distance matrix imported: 20 000 tracks are 1.6 GB of float32 in memory
MAX_DISTANCE_TRACKS = 20_000
#: a MIREX matrix's corner cell, which marks its header row after the list of files
MIREX_CORNER = "Q/R"
ID_COLUMNS = ("track_id", "id", "path")
_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,47}$")
_SHOWN = 8  # problems listed per kind before "… and N more"


class ImportedSpace(Space):
    """A space whose vectors come from a file (module docstring); not in the registry of space
    types — each catalogue keeps its own, found by :func:`imported_space_names`.

    The class attributes of :class:`~songsim.spaces.base.Space` become per-space values here.

    Attributes
    ----------
    vectors_ : np.ndarray [shape=(n_tracks, dim), float32]
        The imported vector of every track, ``tracks.csv`` order (zeros where not covered).
        For an imported distance matrix (``metric == "precomputed"``): the
        ``(n_tracks, n_tracks)`` distances, row i = from track i to every track, in the
        system's units (smaller = closer); uncovered rows and columns hold the largest
        distance (a finite filler never searched).
    covered_ : np.ndarray [shape=(n_tracks,), bool]
        Which tracks the file gave a vector (or a row and column of distances).
    """

    inputs = ()
    family = ORIGIN
    embeds_uploads = False

    def __init__(self, *, name: str, description: str = "", metric: str = "cosine") -> None:
        self.name = name
        self.description = description or f"{'distances' if metric == PRECOMPUTED else 'vectors'} imported for {name}"
        self.metric = metric

    @property
    def kind(self) -> str:
        """``"distances"`` for an imported distance matrix, else ``"vectors"``."""
        return "distances" if self.metric == PRECOMPUTED else "vectors"

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "ImportedSpace":
        raise ImportedSpaceError(
            f"Space {self.name!r} is imported: its {self.kind} come from a file, so it is never fitted. "
            f"Import the file again with `python -m songsim space import DIR --name {self.name} --{self.kind} FILE`."
        )

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        raise ImportedSpaceError(
            f"Space {self.name!r} is imported: it has {self.kind} only for the catalogue's tracks and cannot embed a new song."
        )


@dataclass(frozen=True)
class ImportReport:
    """What an import stored: the space, the tracks it covers, and those the file lacks."""

    name: str
    source: str
    dim: int
    n_tracks: int
    n_covered: int
    missing: list[str] = field(default_factory=list)
    fit_key: str = ""
    #: "vectors", or "distances" for a distance matrix (then ``dim`` is ``n_tracks``)
    kind: str = "vectors"

    def as_dict(self) -> dict:
        return {
            "name": self.name, "source": self.source, "dim": self.dim, "n_tracks": self.n_tracks,
            "n_covered": self.n_covered, "missing": self.missing, "fit_key": self.fit_key, "kind": self.kind,
        }  # fmt: skip

    def summary(self) -> str:
        """One line: what was imported, for how many tracks, from which file."""
        what = f"a {self.n_covered} × {self.n_covered} distance matrix" if self.kind == "distances" else f"{self.dim}-d vectors"
        return f"imported {self.name}: {what} for {self.n_covered} of {self.n_tracks} tracks from {self.source}"


def _fail(path: Path, problem: str, fix: str) -> ImportedSpaceError:
    return ImportedSpaceError(f"{path}: {problem}. {fix}")


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" … and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _read_ids_lines(path: Path) -> list[str]:
    """One id per line (an ids file, or a Projector metadata file with or without a header)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read as text ({exc})", "Give a UTF-8 text file with one track id per line.") from None
    if lines and "\t" in lines[0]:  # Projector metadata with several columns: the header names them
        header = lines[0].split("\t")
        column = next((header.index(c) for c in ID_COLUMNS if c in header), None)
        if column is None:
            raise _fail(path, f"has columns {', '.join(header)} but none named {' or '.join(ID_COLUMNS)}",
                        "Name the column holding the track ids track_id.")
        rows = [line.split("\t") for line in lines[1:]]
        ragged = [str(i + 2) for i, row in enumerate(rows) if len(row) != len(header)]
        if ragged:
            raise _fail(path, f"rows {_listed(ragged)} do not have the header's {len(header)} fields", "Give every row one value per column.")
        return [row[column].strip() for row in rows]
    return [line.strip() for line in lines if line.strip()]


def _numeric_rows(path: Path, text_rows: list[list[str]], *, first_line: int) -> np.ndarray:
    """Text rows → (n, dim) float64, refusing ragged rows and non-numbers by line number."""
    widths = {len(row) for row in text_rows}
    if len(widths) > 1:
        dim = max(widths, key=[len(r) for r in text_rows].count)
        ragged = [str(i + first_line) for i, row in enumerate(text_rows) if len(row) != dim]
        raise _fail(path, f"lines {_listed(ragged)} have another number of values than the others ({dim})",
                    "Give every vector the same dimension.")
    try:
        return np.asarray(text_rows, dtype=np.float64)
    except ValueError:
        for i, row in enumerate(text_rows):
            try:
                np.asarray(row, dtype=np.float64)
            except ValueError:
                raise _fail(path, f"line {i + first_line} holds a value that is not a number ({', '.join(row[:4])}…)",
                            "Give only numbers in the vector columns.") from None
        raise


def _table_vectors(path: Path, table: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    columns = [str(c) for c in table.columns]
    id_column = next((c for c in ID_COLUMNS if c in columns), None)
    if id_column is None:
        raise _fail(path, f"has no {' / '.join(ID_COLUMNS)} column (columns: {_listed(columns)})",
                    "Add a track_id column naming each row's track.")
    values = table.drop(columns=[id_column])
    if values.shape[1] == 0:
        raise _fail(path, "has no vector columns besides its id column", "Give one numeric column per dimension.")
    bad = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
    if bad:
        raise _fail(path, f"columns {_listed([str(c) for c in bad])} are not numeric", "Give only numbers in the vector columns.")
    return table[id_column].astype(str).str.strip().tolist(), values.to_numpy(dtype=np.float64)


def read_vectors(vectors: str | Path, ids: str | Path | None = None) -> tuple[list[str], np.ndarray]:
    """The ids and vectors of a vectors file in any supported format (module docstring).

    Returns
    -------
    ids : list of str [length n]
    vectors : np.ndarray [shape=(n, dim), float64]

    Raises
    ------
    ImportedSpaceError
        A missing or unreadable file, an unsupported format, a missing ids file, ragged rows,
        non-numbers, a wrong dimension or as many ids as vectors not given.
    """
    path = Path(vectors).expanduser()
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise _fail(path, f"format {suffix or '(no extension)'!r} is not supported", f"Give one of {', '.join(FORMATS)}.")
    if not path.is_file():
        raise _fail(path, "does not exist" if not path.exists() else "is not a file", "Give the path of the vectors file.")
    needs_ids = suffix in (".npy", ".tsv")
    if needs_ids and ids is None:
        raise _fail(path, f"a {suffix} file holds no track ids", "Give them with --ids FILE (one track id per line).")
    ids_path = None if ids is None else Path(ids).expanduser()
    if ids_path is not None and not ids_path.is_file():
        raise _fail(ids_path, "does not exist", "Give the path of the ids file (one track id per line).")
    try:
        if suffix == ".npy":
            matrix = np.load(path, allow_pickle=False)
            names = _read_ids_lines(ids_path)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if not {"ids", "vectors"} <= set(archive.files):
                    raise _fail(path, f"holds {_listed(archive.files)}", "Save it with np.savez(FILE, ids=..., vectors=...).")
                names, matrix = [str(i).strip() for i in archive["ids"].tolist()], archive["vectors"]
        elif suffix == ".csv":
            names, matrix = _table_vectors(path, pd.read_csv(path))
        elif suffix == ".parquet":
            names, matrix = _table_vectors(path, pd.read_parquet(path))
        else:
            text = path.read_text(encoding="utf-8-sig").splitlines()
            matrix = _numeric_rows(path, [line.rstrip("\n").split("\t") for line in text if line.strip()], first_line=1)
            names = _read_ids_lines(ids_path)
    except ImportedSpaceError:
        raise
    except (OSError, ValueError, EOFError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read as {suffix} ({exc})", "Check that the file is complete and in that format.") from None
    if ids_path is not None and suffix not in (".npy", ".tsv"):
        raise _fail(ids_path, f"an ids file is not used with {suffix} files (they name their rows)", "Leave --ids out.")
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise _fail(path, f"holds an array of shape {matrix.shape}, not (n_tracks, dim)", "Give one row of numbers per track.")
    if not np.issubdtype(matrix.dtype, np.number):
        raise _fail(path, f"holds {matrix.dtype} values", "Give numbers.")
    if len(names) != matrix.shape[0]:
        where = ids_path if ids_path is not None else path
        raise _fail(where, f"names {len(names)} tracks for {matrix.shape[0]} vectors", "Give exactly one id per vector, in the same order.")
    return names, matrix.astype(np.float64, copy=False)


def _matrix_header(path: Path) -> tuple[int, list[str], dict[str, str]]:
    """Where a distance matrix starts: ``(its header's 1-based line number, the header's
    fields, the MIREX list of files {key: file})``. The header is the first line with at
    least three tab-separated fields (a corner cell and two tracks) or whose first cell is
    ``Q/R``; a MIREX file lists ``key<TAB>file`` lines (after an optional name line) before it."""
    files: dict[str, str] = {}
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                fields = line.rstrip("\r\n").split("\t")
                if len(fields) >= 3 or fields[0].strip().upper() == MIREX_CORNER:
                    return number, fields, files
                if not line.strip():
                    continue
                if len(fields) == 2:
                    key, file = fields[0].strip(), fields[1].strip()
                    if key in files:
                        raise _fail(path, f"line {number} lists key {key!r} a second time", "Give every track one key in the list of files.")
                    files[key] = file
                elif files or number > 1:  # one name line may open a MIREX file, nothing else
                    raise _fail(path, f"line {number} is neither the matrix's header row nor a 'key<TAB>file' line of a MIREX list of files",
                                "Start the file with the header row: a corner cell, then one track id per column, tab-separated.")
                if number > MAX_DISTANCE_TRACKS + 2:
                    break
    except UnicodeDecodeError as exc:
        raise _fail(path, f"cannot be read as UTF-8 text ({exc})", "Give a UTF-8 tab-separated text file.") from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc})", "Check that the file is readable.") from None
    raise _fail(path, "has no header row (a line of tab-separated track names)",
                "Give a tab-separated matrix: a first row naming the column tracks, then one row per track starting with its name.")


def _data_lines(path: Path, header_line: int) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every non-blank line after the header, one at a time: only
    to say where a problem is once the fast parse has found one."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if number > header_line and line.strip():
                yield number, line.rstrip("\r\n")


def _locate_problem(path: Path, header_line: int, n_columns: int, columns: list[str]) -> ImportedSpaceError:
    """The first problems of a matrix the fast parse refused or found holes in, by line:
    ragged rows, non-numbers, empty cells (each line read once more, in the error path only)."""
    ragged, text, empty = [], [], []
    for number, line in _data_lines(path, header_line):
        fields = line.split("\t")
        if len(fields) != n_columns + 1:
            ragged.append(f"{number} ({len(fields) - 1})")
            continue
        try:
            np.asarray(fields[1:], dtype=np.float64)
            continue
        except ValueError:
            pass
        for column, cell in zip(columns, fields[1:]):
            try:
                float(cell)
            except ValueError:
                (empty if not cell.strip() else text).append(f"line {number} (row {fields[0].strip()!r}), column {column!r}" + ("" if not cell.strip() else f": {cell.strip()[:20]!r}"))
                break
    if ragged:
        return _fail(path, f"lines {_listed(ragged)} hold another number of distances (in brackets) than the {n_columns} tracks the header row names",
                     "Give every row its track's name and then one distance per column track.")
    if text:
        return _fail(path, f"holds values that are not numbers: {_listed(text)}", "Give only numbers (distances) in the matrix.")
    if empty:
        return _fail(path, f"has empty cells: {_listed(empty)}",
                     "Give every distance (or drop the track's row and column: it is then listed as missing).")
    return _fail(path, "cannot be read as a tab-separated matrix", "Check that the file is complete and tab-separated.")


def _duplicates(names: list[str]) -> list[tuple[int, int, str]]:
    """``(first position, repeated position, name)`` of every name given twice (0-based)."""
    first: dict[str, int] = {}
    found = []
    for i, name in enumerate(names):
        if name in first:
            found.append((first[name], i, name))
        first.setdefault(name, i)
    return found


def read_distances(distances: str | Path) -> tuple[list[str], np.ndarray]:
    """The track names and the distance matrix of a tab-separated distance file (module
    docstring, "Distance matrices"), checked as a matrix (not yet against a catalogue).

    Returns
    -------
    names : list of str [length n]
        The name of each row, which is also the name of the same column (the columns are
        put in the rows' order). For a MIREX file with a list of files, the files.
    distances : np.ndarray [shape=(n, n), float32]
        Row i: the distances from track i (the query) to every track, smaller = closer.

    Raises
    ------
    ImportedSpaceError
        A missing or unreadable file, an unsupported extension, no header row, more than
        :data:`MAX_DISTANCE_TRACKS` tracks, ragged rows, a non-square matrix, non-numbers,
        empty cells, NaN/inf, negative distances, a name given twice, rows and columns
        naming different tracks, or a key missing from a MIREX list of files.
    """
    path = Path(distances).expanduser()
    suffix = path.suffix.lower()
    if suffix not in DISTANCE_FORMATS:
        raise _fail(path, f"format {suffix or '(no extension)'!r} is not supported for a distance matrix",
                    f"Give a tab-separated text file ({', '.join(DISTANCE_FORMATS)}).")
    if not path.is_file():
        raise _fail(path, "does not exist" if not path.exists() else "is not a file", "Give the path of the distance matrix.")
    header_line, header, files = _matrix_header(path)
    columns = [c.strip() for c in header[1:]]
    if len(columns) < 2:
        raise _fail(path, f"line {header_line}, its header row, names {len(columns)} track(s)",
                    "Give a matrix of at least 2 tracks: a corner cell, then one track id per column, tab-separated.")
    if len(columns) > MAX_DISTANCE_TRACKS:
        raise _fail(path, f"names {len(columns)} tracks; at most {MAX_DISTANCE_TRACKS} are imported ({MAX_DISTANCE_TRACKS}² float32 "
                    f"distances are {MAX_DISTANCE_TRACKS**2 * 4 / 1e9:.1f} GB)", "Import the distances of a smaller catalogue, or give vectors.")
    blank = [str(i + 2) for i, c in enumerate(columns) if not c]
    if blank:
        raise _fail(path, f"line {header_line}, its header row, has no track name in fields {_listed(blank)}", "Name the track of every column.")
    n = len(columns)
    try:  # pandas' C reader straight into float32: no Python loop per cell
        frame = pd.read_csv(
            path, sep="\t", header=None, skiprows=header_line, index_col=0, engine="c", encoding="utf-8-sig",
            dtype={0: str, **dict.fromkeys(range(1, n + 1), np.float32)}, skip_blank_lines=True,
        )  # fmt: skip
    except (ValueError, pd.errors.ParserError):  # a non-number, or a row with too many cells
        raise _locate_problem(path, header_line, n, columns) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read ({exc})", "Check that the file is complete and tab-separated.") from None
    if frame.shape[1] != n:
        raise _locate_problem(path, header_line, n, columns)
    rows = ["" if pd.isna(r) else str(r).strip() for r in frame.index]
    matrix = frame.to_numpy(dtype=np.float32)
    del frame
    lines: list[int] = []  # the file line of each matrix row, read only to name a problem

    def line(row: int) -> int:
        if not lines:
            lines.extend(number for number, _ in _data_lines(path, header_line))  # ints only: n of them
        return lines[row]

    def where(row: int, column: int | None = None) -> str:
        return f"line {line(row)} (row {rows[row]!r}" + ("" if column is None else f", column {columns[column]!r}") + ")"

    if np.isnan(matrix).any():  # empty cells or short rows (pandas gives NaN), or NaN written out
        problem = _locate_problem(path, header_line, n, columns)
        if "cannot be read" not in str(problem):
            raise problem
    nameless = [f"line {line(r)}" for r in range(len(rows)) if not rows[r]]
    if nameless:
        raise _fail(path, f"has rows with no track name in their first cell: {_listed(nameless)}", "Start every row with its track's id.")
    if len(rows) != n:
        raise _fail(path, f"has {len(rows)} rows of distances for the {n} tracks its header row names: a distance matrix is square",
                    "Give one row per column track (and one column per row track).")
    for names, kind, place in ((rows, "rows", lambda i: f"line {line(i)}"), (columns, "header row", lambda i: f"field {i + 2}")):
        twice = _duplicates(names)
        if twice:
            shown = [f"{name!r} ({place(a)} and {place(b)})" for a, b, name in twice]
            raise _fail(path, f"names a track twice in its {kind}: {_listed(shown)}", "Give every track one row and one column.")
    if rows != columns:
        position, named_rows = {name: i for i, name in enumerate(columns)}, set(rows)
        no_column = [name for name in rows if name not in position]
        no_row = [name for name in columns if name not in named_rows]
        if no_column or no_row:
            parts = ([f"rows with no column: {_listed(no_column)}"] if no_column else []) + (
                [f"columns with no row: {_listed(no_row)}"] if no_row else [])
            raise _fail(path, f"its rows and its header row name different tracks ({'; '.join(parts)})",
                        "Name the same tracks in the first column and in the first row.")
        matrix = matrix[:, [position[name] for name in rows]]  # the columns in the rows' order
    def cells(found: np.ndarray, value: bool = False) -> str:  # the first cells found, and how many in all
        shown = [where(r, c) + (f": {matrix[r, c]:g}" if value else "") for r, c in found[:_SHOWN].tolist()]
        return ", ".join(shown) + (f" … {len(found)} cells in all" if len(found) > _SHOWN else "")

    bad = np.argwhere(~np.isfinite(matrix))
    if bad.size:
        raise _fail(path, f"holds NaN or infinite distances: {cells(bad)}",
                    "Give finite distances (or drop those tracks' rows and columns: they are then listed as missing).")
    negative = np.argwhere(matrix < 0)
    if negative.size:
        raise _fail(path, f"holds negative distances: {cells(negative, value=True)}",
                    "Give distances >= 0, smaller = closer (for similarities, give e.g. max − similarity instead).")
    if files:
        unlisted = [name for name in rows if name not in files]
        if unlisted:
            raise _fail(path, f"names keys its list of files does not give: {_listed(unlisted)}",
                        "Give one 'key<TAB>file' line per track before the Q/R row.")
        rows = [files[name] for name in rows]
    return rows, matrix


def _catalogue_rows(catalogue: Catalogue) -> dict[str, int]:
    """Every way an id may name a track: its track id, and its audio path as ``tracks.csv``
    gives it (relative to the folder) and absolute."""
    lookup: dict[str, int] = {}
    for row, (track_id, audio) in enumerate(zip(catalogue.track_ids, catalogue.tracks["path"])):
        audio = Path(audio)
        lookup.setdefault(str(audio), row)
        try:
            lookup.setdefault(audio.relative_to(catalogue.root).as_posix(), row)
        except ValueError:
            pass
        lookup[track_id] = row
    return lookup


def _resolve_rows(
    catalogue: Catalogue, names: list[str], *, source: Path, fix_duplicate: str, where: list[str] | None = None
) -> np.ndarray:
    """The ``tracks.csv`` row of every name of a file (a track id or an audio path), for
    vectors and distance matrices alike.

    ``where`` says where each name is in the file (default ``"row i"``, 1-based data row).

    Raises
    ------
    ImportedSpaceError
        Names that are no track, or two names for one track (an id and its path, say).
    """
    where = where or [f"row {i + 1}" for i in range(len(names))]
    lookup = _catalogue_rows(catalogue)
    unknown = [f"{place} {name!r}" for place, name in zip(where, names) if name not in lookup]
    if unknown:
        raise _fail(source, f"{len(unknown)} ids are not tracks of {catalogue.root / 'tracks.csv'}: {_listed(unknown)}",
                    "Use the track_id (or the audio path) that tracks.csv gives each track.")
    rows = np.array([lookup[name] for name in names], dtype=np.int64)
    first: dict[int, int] = {}
    duplicated = []
    for i, row in enumerate(rows.tolist()):
        if row in first:
            (word, a), (other, b) = where[first[row]].split(" ", 1), where[i].split(" ", 1)
            places = f"{word}s {a} and {b}" if word == other else f"{word} {a} and {other} {b}"  # "rows 1 and 2"
            duplicated.append(f"{places} ({catalogue.track_id_at(row)})")
        first.setdefault(row, i)
    if duplicated:
        raise _fail(source, f"names a track twice: {_listed(duplicated)}", fix_duplicate)
    return rows


def align_vectors(catalogue: Catalogue, names: list[str], matrix: np.ndarray, *, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """The file's vectors in ``tracks.csv`` row order.

    Returns
    -------
    vectors : np.ndarray [shape=(n_tracks, dim), float32]
        Zeros where the file has no vector.
    covered : np.ndarray [shape=(n_tracks,), bool]

    Raises
    ------
    ImportedSpaceError
        Unknown ids, ids naming one track twice, or non-finite values, each by row (1-based
        data row of the file).
    """
    rows = _resolve_rows(catalogue, names, source=source, fix_duplicate="Give one vector per track.")
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad.size:
        raise _fail(source, f"rows {_listed([str(r + 1) for r in bad.tolist()])} hold NaN or infinite values",
                    "Give finite numbers (drop those tracks: they are then listed as missing).")
    vectors = np.zeros((len(catalogue), matrix.shape[1]), dtype=np.float32)
    vectors[rows] = matrix.astype(np.float32)
    covered = np.zeros(len(catalogue), dtype=bool)
    covered[rows] = True
    return vectors, covered


def align_distances(catalogue: Catalogue, names: list[str], matrix: np.ndarray, *, source: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A distance matrix's tracks matched to ``tracks.csv`` (shared with vectors:
    :func:`_resolve_rows`), in catalogue row order.

    Parameters
    ----------
    names : list of str [length n]
        The track of each row (and column) of ``matrix`` (:func:`read_distances`).
    matrix : np.ndarray [shape=(n, n), float32]

    Returns
    -------
    stored : np.ndarray [shape=(n, n), float32]
        ``matrix`` with rows and columns sorted by catalogue row (what is stored).
    rows : np.ndarray [shape=(n,), int64]
        The catalogue row of each row of ``stored``, ascending.
    covered : np.ndarray [shape=(n_tracks,), bool]

    Raises
    ------
    ImportedSpaceError
        Unknown tracks, or two names for one track, each by the line of its row.
    """
    rows = _resolve_rows(catalogue, names, source=source, fix_duplicate="Give every track one row and one column.",
                         where=[f"row {i + 1}" for i in range(len(names))])
    order = np.argsort(rows, kind="stable")
    if (order != np.arange(order.size)).any():
        matrix, rows = matrix[np.ix_(order, order)], rows[order]
    covered = np.zeros(len(catalogue), dtype=bool)
    covered[rows] = True
    return np.ascontiguousarray(matrix, dtype=np.float32), rows, covered


def full_distances(stored: np.ndarray, rows: np.ndarray, n_tracks: int) -> np.ndarray:
    """``vectors_`` of a distance space: (n_tracks, n_tracks) float32, ``stored`` (n, n) at
    ``rows`` × ``rows`` and the largest stored distance elsewhere (a finite filler, never
    searched: those tracks are not covered). No copy when ``stored`` covers every track in order."""
    if rows.size == n_tracks and (rows == np.arange(n_tracks)).all():
        return np.ascontiguousarray(stored, dtype=np.float32)
    full = np.full((n_tracks, n_tracks), float(stored.max()) if stored.size else 0.0, dtype=np.float32)
    full[np.ix_(rows, rows)] = stored
    return full


def check_space_name(name: str, taken: list[str]) -> str:
    """``name`` if usable for an imported space: lower-case letters, digits, ``_ . -`` (≤ 48),
    and not a registered space's name."""
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ImportedSpaceError(
            f"Space name {name!r} is not usable: use 1–48 lower-case letters, digits, '_', '.' or '-', starting with a letter or digit."
        )
    if name in taken:
        raise ImportedSpaceError(f"Space name {name!r} is a built-in or plug-in space: choose another name for your vectors.")
    return name


def import_space(
    catalogue: Catalogue,
    folder: Path,
    *,
    name: str,
    vectors: str | Path,
    ids: str | Path | None = None,
    metric: str = "cosine",
    description: str = "",
    source_label: str | None = None,
) -> ImportReport:
    """Read, validate and store an imported space in ``folder`` (its space folder); see the
    module docstring. Nothing is written unless the whole file is valid. ``source_label``
    names the file in the stored record when ``vectors`` is a temporary copy (a browser
    upload); default: its resolved path.

    The fit key is a hash of the stored vectors, the covered rows, the metric and the
    catalogue's track ids, so a changed file (or a re-import after tracks were added)
    makes the space's maps stale.
    """
    if metric not in METRICS:
        raise ImportedSpaceError(f"Metric {metric!r}: use one of {', '.join(METRICS)}.")
    source = Path(vectors).expanduser().resolve()
    names, matrix = read_vectors(source, ids)
    aligned, covered = align_vectors(catalogue, names, matrix, source=source)
    return _store(
        catalogue, folder, name=name, stored=aligned[covered], fingerprint=aligned, covered=covered, metric=metric,
        description=description, source=source_label or str(source), ids_file=None if ids is None else str(Path(ids).expanduser().resolve()),
    )  # fmt: skip


def import_distance_space(
    catalogue: Catalogue,
    folder: Path,
    *,
    name: str,
    distances: str | Path,
    description: str = "",
    source_label: str | None = None,
) -> ImportReport:
    """Read, validate and store an imported distance matrix in ``folder`` (module docstring,
    "Distance matrices"): metric ``"precomputed"``, ``distances.npy``. Nothing is written
    unless the whole file is valid; id resolution, the missing-track list, the record and
    the fit key are those of :func:`import_space`."""
    source = Path(distances).expanduser().resolve()
    names, matrix = read_distances(source)
    stored, _, covered = align_distances(catalogue, names, matrix, source=source)
    del matrix
    return _store(
        catalogue, folder, name=name, stored=stored, fingerprint=stored, covered=covered, metric=PRECOMPUTED,
        description=description, source=source_label or str(source), ids_file=None,
    )  # fmt: skip


def _store(
    catalogue: Catalogue, folder: Path, *, name: str, stored: np.ndarray, fingerprint: np.ndarray, covered: np.ndarray,
    metric: str, description: str, source: str, ids_file: str | None,
) -> ImportReport:
    """Write an imported space (vectors, or distances for ``metric="precomputed"``) and its
    record; the fit key hashes ``fingerprint``, the covered rows, the metric and the
    catalogue's track ids. The other kind's file of an earlier import is removed."""
    distances = metric == PRECOMPUTED
    digest = hashlib.sha256()
    for part in (np.ascontiguousarray(fingerprint).data, covered.tobytes(), metric.encode(), "\0".join(catalogue.track_ids).encode()):
        digest.update(part)  # the array's own buffer: a 400 MB matrix is not copied to be hashed
    fit_key = f"imported-{name}-{digest.hexdigest()[:20]}"
    missing = [catalogue.track_id_at(row) for row in np.flatnonzero(~covered).tolist()]
    file_name, other = (DISTANCES_FILE, VECTORS_FILE) if distances else (VECTORS_FILE, DISTANCES_FILE)
    with atomic_write(folder / file_name) as handle:
        np.save(handle, np.ascontiguousarray(stored, dtype=np.float32), allow_pickle=False)
    dim = len(catalogue) if distances else int(stored.shape[1])
    write_json(
        folder / "meta.json",
        {
            "name": name, "origin": ORIGIN, "fit_key": fit_key, "dim": dim, "kind": "distances" if distances else "vectors",
            "n_tracks": len(catalogue), "n_covered": int(covered.sum()), "missing": missing,
            "track_ids": [catalogue.track_id_at(r) for r in np.flatnonzero(covered).tolist()],  # of the stored rows (and columns)
            "metric": metric, "description": description, "source": source,
            "ids_file": ids_file, "fit_seconds": 0.0,
            "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )  # fmt: skip
    (folder / other).unlink(missing_ok=True)
    return ImportReport(
        name=name, source=source, dim=dim, n_tracks=len(catalogue), n_covered=int(covered.sum()), missing=missing,
        fit_key=fit_key, kind="distances" if distances else "vectors",
    )  # fmt: skip


def is_imported(meta: dict) -> bool:
    """Whether a space folder's ``meta.json`` (as read) is an imported space's."""
    return meta.get("origin") == ORIGIN


def load_imported(catalogue: Catalogue, folder: Path, meta: dict) -> ImportedSpace:
    """The imported space stored in ``folder``, its rows matched to today's ``tracks.csv`` by
    track id (tracks added since the import are not covered). A distance matrix
    (metric ``"precomputed"``) becomes the (n_tracks, n_tracks) ``vectors_`` of
    :func:`full_distances`."""
    distances = meta.get("metric") == PRECOMPUTED
    path = folder / (DISTANCES_FILE if distances else VECTORS_FILE)
    kind = "distances" if distances else "vectors"
    rebuild = f"import the {kind} again with `python -m songsim space import {catalogue.root} --name {meta.get('name')} --{kind} FILE`"
    try:
        stored = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise NotBuiltError(f"{path} is unreadable ({exc}): {rebuild}.") from None
    stored_ids = meta.get("track_ids", [])
    if stored.ndim != 2 or len(stored_ids) != stored.shape[0] or distances and stored.shape[1] != stored.shape[0]:
        raise NotBuiltError(f"{path} does not match its meta.json: {rebuild}.")
    space = ImportedSpace(name=meta["name"], description=meta.get("description", ""), metric=meta.get("metric", "cosine"))
    stored_row = {track_id: row for row, track_id in enumerate(stored_ids)}
    rows = [(row, stored_row[t]) for row, t in enumerate(catalogue.track_ids) if t in stored_row]
    if distances:
        now, then = np.array(rows, dtype=np.int64).reshape(-1, 2).T
        if then.size != len(stored_ids) or (then != np.arange(then.size)).any():
            stored = stored[np.ix_(then, then)]  # tracks removed from (or reordered in) tracks.csv since the import
        covered = np.zeros(len(catalogue), dtype=bool)
        covered[now] = True
        space.vectors_, space.covered_ = full_distances(stored, now, len(catalogue)), covered
        return space
    vectors = np.zeros((len(catalogue), stored.shape[1]), dtype=np.float32)
    covered = np.zeros(len(catalogue), dtype=bool)
    if rows:
        now, then = np.array(rows, dtype=np.int64).T
        vectors[now], covered[now] = stored[then], True
    space.vectors_, space.covered_ = vectors, covered
    return space


def imported_space_names(derived_dir: Path) -> list[str]:
    """Names of the imported spaces stored in a catalogue, in name order."""
    spaces = Path(derived_dir) / "spaces"
    if not spaces.is_dir():
        return []
    return sorted(p.name for p in spaces.iterdir() if is_imported(read_json(p / "meta.json") or {}))


def coverage_text(catalogue: Catalogue, space: ImportedSpace) -> str:
    """One line for the pages and the CLI: how many tracks the space covers, which it lacks."""
    missing = [catalogue.track_id_at(r) for r in np.flatnonzero(~space.covered_).tolist()]
    return f"{space.kind} for {int(space.covered_.sum())} of {len(catalogue)} tracks" + (f"; none for {_listed(missing)}" if missing else "")


__all__ = [
    "ImportReport",
    "ImportedSpace",
    "align_distances",
    "align_vectors",
    "full_distances",
    "import_distance_space",
    "coverage_text",
    "check_space_name",
    "import_space",
    "imported_space_names",
    "is_imported",
    "load_imported",
    "read_distances",
    "read_vectors",
]

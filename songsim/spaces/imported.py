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
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from songsim.catalogue import Catalogue
from songsim.errors import ImportedSpaceError, NotBuiltError
from songsim.files import atomic_write, read_json, write_json
from songsim.neighbours import METRICS
from songsim.spaces.base import Space

VECTORS_FILE = "vectors.npy"
ORIGIN = "imported"
FORMATS = (".npy", ".npz", ".csv", ".parquet", ".tsv")
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
    covered_ : np.ndarray [shape=(n_tracks,), bool]
        Which tracks the file gave a vector.
    """

    inputs = ()
    family = ORIGIN
    embeds_uploads = False

    def __init__(self, *, name: str, description: str = "", metric: str = "cosine") -> None:
        self.name = name
        self.description = description or f"vectors imported for {name}"
        self.metric = metric

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "ImportedSpace":
        raise ImportedSpaceError(
            f"Space {self.name!r} is imported: its vectors come from a file, so it is never fitted. "
            f"Import the file again with `python -m songsim space import DIR --name {self.name} --vectors FILE`."
        )

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        raise ImportedSpaceError(
            f"Space {self.name!r} is imported: it has vectors only for the catalogue's tracks and cannot embed a new song."
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

    def as_dict(self) -> dict:
        return {
            "name": self.name, "source": self.source, "dim": self.dim, "n_tracks": self.n_tracks,
            "n_covered": self.n_covered, "missing": self.missing, "fit_key": self.fit_key,
        }  # fmt: skip


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
    lookup = _catalogue_rows(catalogue)
    unknown = [f"row {i + 1} {name!r}" for i, name in enumerate(names) if name not in lookup]
    if unknown:
        raise _fail(source, f"{len(unknown)} ids are not tracks of {catalogue.root / 'tracks.csv'}: {_listed(unknown)}",
                    "Use the track_id (or the audio path) that tracks.csv gives each track.")
    rows = np.array([lookup[name] for name in names], dtype=np.int64)
    first: dict[int, int] = {}
    duplicated = []
    for i, row in enumerate(rows.tolist()):
        if row in first:
            duplicated.append(f"rows {first[row] + 1} and {i + 1} ({catalogue.track_id_at(row)})")
        first.setdefault(row, i)
    if duplicated:
        raise _fail(source, f"names a track twice: {_listed(duplicated)}", "Give one vector per track.")
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad.size:
        raise _fail(source, f"rows {_listed([str(r + 1) for r in bad.tolist()])} hold NaN or infinite values",
                    "Give finite numbers (drop those tracks: they are then listed as missing).")
    vectors = np.zeros((len(catalogue), matrix.shape[1]), dtype=np.float32)
    vectors[rows] = matrix.astype(np.float32)
    covered = np.zeros(len(catalogue), dtype=bool)
    covered[rows] = True
    return vectors, covered


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
    digest = hashlib.sha256()
    for part in (aligned.tobytes(), covered.tobytes(), metric.encode(), "\0".join(catalogue.track_ids).encode()):
        digest.update(part)
    fit_key = f"imported-{name}-{digest.hexdigest()[:20]}"
    missing = [catalogue.track_id_at(row) for row in np.flatnonzero(~covered).tolist()]
    buffer = io.BytesIO()
    np.save(buffer, aligned[covered], allow_pickle=False)
    with atomic_write(folder / VECTORS_FILE) as handle:
        handle.write(buffer.getvalue())
    write_json(
        folder / "meta.json",
        {
            "name": name, "origin": ORIGIN, "fit_key": fit_key, "dim": int(aligned.shape[1]),
            "n_tracks": len(catalogue), "n_covered": int(covered.sum()), "missing": missing,
            "track_ids": [catalogue.track_id_at(r) for r in np.flatnonzero(covered).tolist()],  # of vectors.npy's rows
            "metric": metric, "description": description, "source": source_label or str(source),
            "ids_file": None if ids is None else str(Path(ids).expanduser().resolve()), "fit_seconds": 0.0,
            "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )  # fmt: skip
    return ImportReport(
        name=name, source=source_label or str(source), dim=int(aligned.shape[1]), n_tracks=len(catalogue),
        n_covered=int(covered.sum()), missing=missing, fit_key=fit_key,
    )  # fmt: skip


def is_imported(meta: dict) -> bool:
    """Whether a space folder's ``meta.json`` (as read) is an imported space's."""
    return meta.get("origin") == ORIGIN


def load_imported(catalogue: Catalogue, folder: Path, meta: dict) -> ImportedSpace:
    """The imported space stored in ``folder``, its rows matched to today's ``tracks.csv`` by
    track id (tracks added since the import are not covered)."""
    path = folder / VECTORS_FILE
    rebuild = f"import the vectors again with `python -m songsim space import {catalogue.root} --name {meta.get('name')} --vectors FILE`"
    try:
        stored = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise NotBuiltError(f"{path} is unreadable ({exc}): {rebuild}.") from None
    stored_ids = meta.get("track_ids", [])
    if stored.ndim != 2 or len(stored_ids) != stored.shape[0]:
        raise NotBuiltError(f"{path} does not match its meta.json: {rebuild}.")
    space = ImportedSpace(name=meta["name"], description=meta.get("description", ""), metric=meta.get("metric", "cosine"))
    stored_row = {track_id: row for row, track_id in enumerate(stored_ids)}
    rows = [(row, stored_row[t]) for row, t in enumerate(catalogue.track_ids) if t in stored_row]
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
    return f"vectors for {int(space.covered_.sum())} of {len(catalogue)} tracks" + (f"; none for {_listed(missing)}" if missing else "")


__all__ = [
    "ImportReport",
    "ImportedSpace",
    "align_vectors",
    "coverage_text",
    "check_space_name",
    "import_space",
    "imported_space_names",
    "is_imported",
    "load_imported",
    "read_vectors",
]

"""Crash-safe files: every derived file in songsim is written through :func:`atomic_write`,
so a reader never sees a half-written file and a crash keeps the previous version.

CSV cells songsim writes never run as a spreadsheet formula (OWASP, "CSV Injection"): a text
cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a
leading ``'`` (:func:`csv_safe`; every CSV writer goes through it or :func:`csv_table_bytes`),
and readers give the original text back (:func:`csv_original`). A cell that is a plain decimal
number (``-7.25``, ``+1e-3``) is left as it is: a spreadsheet reads it as a number, not a
formula (the rule of ``defusedcsv``). A text that already begins with ``'`` gets one more, so
the round trip is exact.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``path`` for binary writing; on success it replaces ``path``.

    The data is flushed and fsynced before ``os.replace``, so a reader never sees a partial
    file and a crash (or an exception inside the ``with`` block) leaves the previous version
    of ``path`` intact and no stray temporary file behind (except after a hard kill, when a
    hidden ``.<name>.<random>.tmp`` may remain). Parent folders are created.

    Parameters
    ----------
    path : str or path-like
        Final destination.

    Yields
    ------
    BinaryIO
        The open temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        with open(tmp, "xb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    with atomic_write(path) as handle:
        handle.write(json.dumps(payload, indent=2, default=str).encode())


def read_json(path: str | os.PathLike) -> Any | None:
    """The JSON in ``path``, or ``None`` when it is missing or unreadable (a stale cache)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


#: first characters that make a spreadsheet evaluate a cell (OWASP's list)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_safe(value: Any) -> Any:
    """``value`` as a CSV cell no spreadsheet runs: a text beginning with one of
    :data:`FORMULA_STARTS` (or with ``'``) gets a leading ``'``; plain numbers and non-text
    values are returned unchanged (module docstring)."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] == "'" or (value[0] in FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def csv_original(value: Any) -> Any:
    """The text :func:`csv_safe` was given: one leading ``'`` removed where it escapes a
    formula character or another ``'``; anything else (a hand-written ``'tis``) unchanged."""
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1] in (*FORMULA_STARTS, "'"):
        return value[1:]
    return value


def csv_table_bytes(table: Any, **to_csv: Any) -> bytes:
    """A pandas DataFrame as UTF-8 CSV bytes with every text cell through :func:`csv_safe`
    (``to_csv`` keywords are passed to :meth:`pandas.DataFrame.to_csv`; ``index=False`` by default)."""
    to_csv.setdefault("index", False)
    safe = table.copy()
    for column in safe.columns:
        if not (safe[column].dtype.kind in "biufcmM"):
            safe[column] = safe[column].map(csv_safe)
    return safe.to_csv(**to_csv).encode("utf-8")

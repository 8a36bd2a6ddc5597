"""Crash-safe files: every derived file in songsim is written through :func:`atomic_write`,
so a reader never sees a half-written file and a crash keeps the previous version."""

from __future__ import annotations

import json
import os
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

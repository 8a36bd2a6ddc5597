"""The catalogues this installation knows: a small registry in ``<songsim home>/catalogues.json``.

The registry only remembers folders (and a display name); the catalogue itself stays in its
folder (``tracks.csv`` + ``.songsim/``). Forgetting a catalogue never deletes anything. The
embedded demo (:func:`songsim.config.default_demo_dir`) is always listed first and cannot be
forgotten. Writes are atomic and serialised by a file lock, so two app sessions adding
catalogues at once both keep theirs.

File format::

    {"version": 1, "catalogues": [{"path": "/abs/folder", "name": "gtzan", "added_at": "2025-…Z"}]}
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from filelock import FileLock

from songsim import config
from songsim.build import is_built
from songsim.catalogue import TRACKS_CSV
from songsim.errors import CatalogueRegistryError
from songsim.files import write_json

__all__ = [
    "REGISTRY_FILE",
    "CatalogueRegistryError",
    "KnownCatalogue",
    "add_catalogue",
    "describe_catalogue",
    "forget_catalogue",
    "list_catalogues",
    "registry_path",
]

REGISTRY_FILE = "catalogues.json"
_VERSION = 1


@dataclass(frozen=True)
class KnownCatalogue:
    """A catalogue folder in the registry.

    Attributes
    ----------
    path : Path
        The catalogue folder (absolute, resolved).
    name : str
        Display name (the folder name unless given).
    is_demo : bool
        The embedded demo (always listed, never stored in the file).
    added_at : str or None
        When it was registered (UTC, ISO 8601); ``None`` for the demo.
    """

    path: Path
    name: str
    is_demo: bool = False
    added_at: str | None = None


def registry_path() -> Path:
    """``<songsim home>/catalogues.json`` (see :func:`songsim.config.songsim_home`)."""
    return config.songsim_home() / REGISTRY_FILE


def _resolve(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        entries = payload["catalogues"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("path"), str) for e in entries):
            raise ValueError("'catalogues' must be a list of {\"path\": …} objects")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogueRegistryError(
            f"The catalogue registry {path} is unreadable ({exc}): fix it, or delete it to start a new list "
            "(no catalogue folder is lost; add them again on the Catalogue page)."
        ) from None
    return entries


def _lock(path: Path) -> FileLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=30)


def list_catalogues() -> list[KnownCatalogue]:
    """The demo, then every registered catalogue in the order it was added.

    Raises
    ------
    CatalogueRegistryError
        When ``catalogues.json`` exists but cannot be read (the message names the fix).
    """
    demo = config.default_demo_dir()
    known = [KnownCatalogue(path=demo, name="demo", is_demo=True)]
    for entry in _read(registry_path()):
        path = _resolve(entry["path"])
        if path != demo and all(k.path != path for k in known):
            known.append(KnownCatalogue(path=path, name=str(entry.get("name") or path.name), added_at=entry.get("added_at")))
    return known


def add_catalogue(
    path: str | Path, *, name: str | None = None, roots: list[str | Path] | None = None
) -> KnownCatalogue:
    """Register the catalogue folder ``path`` (idempotent; a given ``name`` replaces the old one).

    The folder need not exist yet (an import creates it). Returns the registry entry. With
    ``roots`` (the app passes :func:`songsim.config.allowed_roots`), a folder that does not
    resolve under one of them is refused with :class:`~songsim.errors.OutsideRootsError` and
    nothing is registered; ``None`` (the command line) does not limit it.
    """
    if roots is not None:
        path = config.require_under_roots(path, what="The catalogue folder", roots=[Path(r) for r in roots])
    path = _resolve(path)
    if path == config.default_demo_dir():
        return list_catalogues()[0]
    file = registry_path()
    with _lock(file):
        entries = _read(file)
        for entry in entries:
            if _resolve(entry["path"]) == path:
                if name and entry.get("name") != name:
                    entry["name"] = name
                    write_json(file, {"version": _VERSION, "catalogues": entries})
                return KnownCatalogue(path=path, name=entry.get("name") or path.name, added_at=entry.get("added_at"))
        entry = {"path": str(path), "name": name or path.name, "added_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        entries.append(entry)
        write_json(file, {"version": _VERSION, "catalogues": entries})
    return KnownCatalogue(path=path, name=entry["name"], added_at=entry["added_at"])


def forget_catalogue(path: str | Path) -> bool:
    """Remove ``path`` from the registry (its folder is left untouched); False if it was not there.

    Raises
    ------
    CatalogueRegistryError
        For the demo, which is always listed.
    """
    path = _resolve(path)
    if path == config.default_demo_dir():
        raise CatalogueRegistryError(f"The demo catalogue ({path}) is always listed and cannot be forgotten.")
    file = registry_path()
    with _lock(file):
        entries = _read(file)
        kept = [e for e in entries if _resolve(e["path"]) != path]
        if len(kept) == len(entries):
            return False
        write_json(file, {"version": _VERSION, "catalogues": kept})
    return True


def describe_catalogue(path: str | Path) -> dict:
    """A cheap summary for a list of catalogues: ``{"tracks": int | None, "state": str}``.

    ``state`` is ``"built"`` (tracks.csv plus the stored default spaces and maps; see
    :func:`songsim.build.is_built`), ``"not built"``, ``"no tracks.csv"`` or ``"no folder"``.
    ``tracks`` counts the rows of ``tracks.csv`` without checking them (``None`` when there is
    none or it cannot be parsed).
    """
    path = _resolve(path)
    if not path.is_dir():
        return {"tracks": None, "state": "no folder"}
    csv_path = path / TRACKS_CSV
    if not csv_path.is_file():
        return {"tracks": None, "state": "no tracks.csv"}
    try:
        tracks = len(pd.read_csv(csv_path, usecols=[0], dtype=str))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError):
        tracks = None
    return {"tracks": tracks, "state": "built" if is_built(path) else "not built"}

"""Signed derived files: songsim never unpickles a file this installation did not write.

A fitted space (``spaces/<name>/space.joblib``) and a fitted map (``spaces/<name>/maps/<method>.pkl``)
are Python objects (scikit-learn scalers and PCAs, UMAP and openTSNE reducers, torch checkpoints
held as bytes), stored as pickles. Loading a pickle runs whatever code it names, so a catalogue
folder received from someone else could run anything the moment songsim opened it.

Every such file is therefore written with a signature, and read only when the signature is
this installation's:

``songsim-signed-v1\\n`` + key id (8 bytes) + HMAC-SHA256 tag (32 bytes) + the pickle

The tag is ``HMAC-SHA256(key, purpose + b"\\0" + pickle)`` (``purpose``: ``"space"`` or ``"map"``,
so one kind of file cannot stand in for the other), keyed by a **per-installation secret key**
that lives outside every catalogue: ``$SONGSIM_KEY_FILE``, else
``$XDG_CONFIG_HOME/songsim/signing.key``, else ``~/.config/songsim/signing.key``. It is created
on first use (32 random bytes from :func:`os.urandom`, hex, file mode 0600) and refused when
other users may read or write it, or when it lies inside the catalogue it would vouch for.
:func:`read_signed` checks the tag with :func:`hmac.compare_digest` on the bytes it read,
*before* anything is unpickled, and unpickles those same bytes (no second read of the file).

A file that is unsigned (written by an older songsim, or not by songsim), signed with another
installation's key (a catalogue copied from another machine or user), or changed since it was
signed raises :class:`~songsim.errors.UntrustedFileError` (a
:class:`~songsim.errors.NotBuiltError`), whose message says to rebuild: ``build`` treats such a
space or map as not built and replaces it. The files that are data -- features (``.npy`` with
``allow_pickle=False``), imported vectors, JSON records, annoy indexes, torch training states
(``weights_only=True``) -- are not signed and are reused as they are.

:func:`trust_problem` (memoised per file version) tells the stage states and ``is_built``
whether a stored file would load, without unpickling it. Deleting the key makes every signed
file of every catalogue on this installation untrusted: the next build refits them.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import pickle
import secrets
import stat as stat_module
import threading
from pathlib import Path
from typing import Any

from songsim import config
from songsim.errors import SongsimError, UntrustedFileError
from songsim.files import atomic_write

#: environment variable naming the signing key file (default :func:`key_path`)
KEY_FILE_ENV = "SONGSIM_KEY_FILE"
KEY_FILE_NAME = "signing.key"
MAGIC = b"songsim-signed-v1\n"
KEY_ID_BYTES = 8
TAG_BYTES = hashlib.sha256().digest_size
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES + TAG_BYTES
KEY_BYTES = 32

_lock = threading.Lock()
_keys: dict[str, tuple[tuple[int, int, int], bytes]] = {}
_verdicts: dict[tuple, str | None] = {}


def key_path() -> Path:
    """Where this installation's signing key lives: ``$SONGSIM_KEY_FILE``, else
    ``$XDG_CONFIG_HOME/songsim/signing.key``, else ``~/.config/songsim/signing.key``."""
    if os.environ.get(KEY_FILE_ENV):
        return Path(os.environ[KEY_FILE_ENV]).expanduser().resolve()
    base = os.environ.get("XDG_CONFIG_HOME") or (Path.home() / ".config")
    return (Path(base) / "songsim" / KEY_FILE_NAME).resolve()


def _create_key(path: Path) -> None:
    """Write a fresh key to ``path`` unless one appears meanwhile (two processes starting at
    once agree on one key: the file is linked into place, never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(os.urandom(KEY_BYTES).hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: exclusive create, then move into place
            if not path.exists():
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def signing_key() -> bytes:
    """This installation's key (created on first use); read once per version of the file.

    Raises
    ------
    SongsimError
        The key cannot be created, is damaged, or other users may read or change it.
    """
    path = key_path()
    fix = f"set ${KEY_FILE_ENV} to a file only you can read, outside every catalogue"
    try:
        try:
            info = path.stat()
        except FileNotFoundError:
            _create_key(path)
            info = path.stat()
    except OSError as exc:
        raise SongsimError(f"songsim cannot create its signing key {path} ({exc.strerror or exc}): {fix}.") from None
    if os.name != "nt" and info.st_mode & 0o077:
        raise SongsimError(
            f"The signing key {path} can be read or changed by other users (mode {stat_module.filemode(info.st_mode)}): "
            f"run `chmod 600 {path}` (or {fix})."
        )
    version = (info.st_ino, info.st_mtime_ns, info.st_size)
    with _lock:
        cached = _keys.get(str(path))
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise SongsimError(
            f"The signing key {path} is damaged (not {KEY_BYTES * 2} hex digits): delete it; songsim makes a new one, "
            "and every catalogue's spaces and maps are then rebuilt by `python -m songsim build DIR`."
        )
    with _lock:
        _keys[str(path)] = (version, key)
    return key


def _key_id(key: bytes) -> bytes:
    return hmac.new(key, b"songsim key id", hashlib.sha256).digest()[:KEY_ID_BYTES]


def _tag(key: bytes, purpose: str, payload: bytes) -> bytes:
    mac = hmac.new(key, purpose.encode() + b"\0", hashlib.sha256)
    mac.update(payload)
    return mac.digest()


def catalogue_root_of(path: Path) -> Path | None:
    """The catalogue folder a derived file belongs to (the parent of its ``.songsim``), if any."""
    for parent in Path(path).absolute().parents:
        if parent.name == config.DERIVED_DIRNAME:
            return parent.parent
    return None


def _checked_key(path: Path) -> bytes:
    """The key, refused when it lies inside the catalogue of ``path`` (whoever sent the
    catalogue could then sign with it)."""
    root = catalogue_root_of(path)
    if root is not None and (key_path().is_relative_to(root) or key_path().is_relative_to(root.resolve())):
        raise SongsimError(
            f"The signing key {key_path()} lies inside the catalogue {root}, so whoever sends you the catalogue "
            f"could sign its files: set ${KEY_FILE_ENV} to a path outside every catalogue."
        )
    return signing_key()


def rebuild_hint(path: Path) -> str:
    """``python -m songsim build <catalogue>`` for the catalogue of ``path``."""
    root = catalogue_root_of(path)
    return f"`python -m songsim build {root if root is not None else 'DIR'}`"


def write_signed(path: str | os.PathLike, payload: bytes, *, purpose: str) -> Path:
    """Write ``payload`` to ``path`` atomically, signed with this installation's key."""
    path = Path(path)
    key = _checked_key(path)
    with atomic_write(path) as handle:
        handle.write(MAGIC + _key_id(key) + _tag(key, purpose, payload))
        handle.write(payload)
    return path


def _problem(data: bytes, key: bytes, purpose: str) -> str | None:
    """Why ``data`` is not a file this installation signed for ``purpose``; ``None`` if it is."""
    if not data.startswith(MAGIC) or len(data) < HEADER_BYTES:
        return "is not signed (written by an older songsim, or not by songsim)"
    key_id = data[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES]
    tag = data[len(MAGIC) + KEY_ID_BYTES : HEADER_BYTES]
    if not hmac.compare_digest(key_id, _key_id(key)):
        return "was signed by another songsim installation (a catalogue copied from another machine or user)"
    if not hmac.compare_digest(tag, _tag(key, purpose, memoryview(data)[HEADER_BYTES:])):
        return "does not match its signature (it was changed after songsim wrote it)"
    return None


def _untrusted(path: Path, problem: str, hint: str | None) -> UntrustedFileError:
    return UntrustedFileError(
        f"{path} {problem}. songsim does not open it, because loading it could run code. "
        f"Rebuild it with {hint or rebuild_hint(path)} (features are reused; a catalogue copied from elsewhere needs "
        "this once on every installation)."
    )


def read_signed(path: str | os.PathLike, *, purpose: str, hint: str | None = None) -> bytes:
    """The payload of a file :func:`write_signed` wrote on this installation.

    Parameters
    ----------
    path : path-like
    purpose : str
        What the file must have been signed as (``"space"``, ``"map"``).
    hint : str, optional
        The rebuild command the error names (default: build the whole catalogue).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    UntrustedFileError
        Unsigned, signed by another installation, or changed since it was signed.
    """
    path = Path(path)
    key = _checked_key(path)
    data = path.read_bytes()
    problem = _problem(data, key, purpose)
    if problem is not None:
        raise _untrusted(path, problem, hint)
    return data[HEADER_BYTES:]


def dump_signed(obj: Any, path: str | os.PathLike, *, purpose: str, joblib_format: bool = False) -> Path:
    """Pickle ``obj`` (with joblib when ``joblib_format``) and :func:`write_signed` it."""
    buffer = io.BytesIO()
    if joblib_format:
        import joblib

        joblib.dump(obj, buffer)
    else:
        pickle.dump(obj, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    return write_signed(path, buffer.getvalue(), purpose=purpose)


def load_signed(path: str | os.PathLike, *, purpose: str, joblib_format: bool = False, hint: str | None = None) -> Any:
    """Unpickle a file :func:`dump_signed` wrote on this installation; the signature is checked
    on the bytes read before any of them is unpickled (:func:`read_signed` raises otherwise)."""
    payload = read_signed(path, purpose=purpose, hint=hint)
    if joblib_format:
        import joblib

        return joblib.load(io.BytesIO(payload))
    return pickle.loads(payload)


def trust_problem(path: str | os.PathLike, *, purpose: str) -> str | None:
    """Why the stored file at ``path`` would be refused (see :func:`read_signed`), or ``None``
    when it is signed by this installation; ``"is missing"`` when there is no file. Nothing is
    unpickled; the answer is memoised per version of the file (inode, mtime, size) and of the
    key, so the stage states and ``is_built`` read each file once per process."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        return "is missing"
    key = _checked_key(path)
    version = (str(path), purpose, info.st_ino, info.st_mtime_ns, info.st_size, _key_id(key))
    with _lock:
        if version in _verdicts:
            return _verdicts[version]
    try:
        problem = _problem(path.read_bytes(), key, purpose)
    except FileNotFoundError:
        return "is missing"
    with _lock:
        if len(_verdicts) > 4096:
            _verdicts.clear()
        _verdicts[version] = problem
    return problem

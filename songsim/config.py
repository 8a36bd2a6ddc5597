"""One place for paths, audio constants (with units) and environment variables.

Every derived file of a catalogue lives under ``<catalogue>/.songsim/`` so that a catalogue
folder is self-contained: copy the folder and the features go with it; its fitted models and
maps are signed by the installation that wrote them (:mod:`songsim.signed`, whose key lives
outside every catalogue), so another installation refits them once instead of running them.
"""

from __future__ import annotations

import os
from pathlib import Path

from threadpoolctl import threadpool_limits

# --- audio -------------------------------------------------------------------------------
SAMPLE_RATE_HZ = 22_050  # every clip is resampled to this rate
CLIP_DURATION_S = 30.0  # length of the excerpt that features and models see
MIN_DURATION_S = 5.0  # shorter files are rejected: too little music to judge
MAX_DURATION_S = 20 * 60.0  # longer files are rejected: not a song (a DJ mix, a podcast)
SILENCE_DBFS = -60.0  # an excerpt whose RMS is below this level is "silent"
MIN_SAMPLE_RATE_HZ = 8_000  # files at a lower native rate are refused (a 1 Hz header is no song)
MAX_SAMPLE_RATE_HZ = 384_000  # files at a higher native rate are refused (no real recording)
# Decoded samples may exceed full scale (|x| <= 1) by this much: float files with overs and lossy
# decoders' overshoot pass; anything louder (a float WAV holding ±1e6) is refused as not audio.
FULL_SCALE_TOLERANCE = 0.5  # i.e. |sample| <= 1.5 (+3.5 dB over full scale)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")

# --- spectral analysis -------------------------------------------------------------------
N_FFT = 2048  # samples per STFT frame (93 ms at 22 050 Hz)
HOP_LENGTH = 512  # samples between frames (23 ms at 22 050 Hz); 30 s -> 1 292 frames
N_MELS = 64  # mel bands of the log-mel spectrogram

# --- environment -------------------------------------------------------------------------
DEFAULT_MAP_METHODS = ("pca", "umap", "tsne")  # 2-D maps a build fits for every space

HOME_ENV = "SONGSIM_HOME"  # overrides where songsim keeps the demo catalogue and uploads
ANNOY_ABOVE_ENV = "SONGSIM_ANNOY_ABOVE"  # tracks above which neighbours come from an annoy index
MAP_SAMPLE_SIZE_ENV = "SONGSIM_MAP_SAMPLE_SIZE"  # tracks above which non-linear maps fit on a sample
CATALOGUE_ENV = "SONGSIM_CATALOGUE"  # a catalogue folder the app opens instead of the demo
ROOTS_ENV = "SONGSIM_ROOTS"  # folders (os.pathsep-separated) the app may import from and write to
DERIVED_DIRNAME = ".songsim"  # derived files inside a catalogue folder


def songsim_home() -> Path:
    """The folder songsim owns: ``$SONGSIM_HOME``, else ``$XDG_CACHE_HOME/songsim``,
    else ``~/.cache/songsim``."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return (Path(cache) / "songsim").resolve()


def allowed_roots() -> list[Path]:
    """The folders under which the app may read audio and metadata and create catalogues.

    ``$SONGSIM_ROOTS`` (folders separated by :data:`os.pathsep`, ``:`` on Linux and macOS),
    else the user's home and :func:`songsim_home`. Each is resolved (``~``, symlinks, ``..``).
    The Catalogue page's import and "add a catalogue" accept only paths under one of them;
    the command line (``python -m songsim import``), run by someone with a shell already, is
    not limited.
    """
    text = os.environ.get(ROOTS_ENV, "")
    given = [part.strip() for part in text.split(os.pathsep) if part.strip()]
    roots = [Path(part).expanduser() for part in given] if given else [Path.home(), songsim_home()]
    unique: list[Path] = []
    for root in roots:
        resolved = root.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def require_under_roots(path: str | os.PathLike, *, what: str, roots: list[Path] | None = None) -> Path:
    """``path`` resolved (``~``, symlinks and ``..`` first), if it lies under an allowed root.

    Parameters
    ----------
    path : path-like
        An absolute path given by a user (a folder to import, a metadata file, a catalogue).
    what : str
        What it is, for the message ("The audio folder").
    roots : list of Path, optional
        The allowed roots (default :func:`allowed_roots`).

    Raises
    ------
    OutsideRootsError
        The resolved path is not under any root: nothing was read, checked or created (the
        message does not say whether it exists).
    """
    from songsim.errors import OutsideRootsError

    roots = allowed_roots() if roots is None else [Path(r).expanduser().resolve() for r in roots]
    resolved = Path(path).expanduser().resolve()
    if any(resolved.is_relative_to(root) for root in roots):
        return resolved
    shown = f"{path}" + (f" (which is {resolved})" if str(resolved) != str(path) else "")
    raise OutsideRootsError(
        f"{what} {shown} is outside the folders this app may read and write "
        f"({', '.join(map(str, roots))}): choose one under them, or, on the server, add its folder to "
        f"{ROOTS_ENV} (folders separated by '{os.pathsep}') and restart the app."
    )


def size_setting(name: str, default: int, *, minimum: int) -> int:
    """The integer setting in environment variable ``name`` (``default`` when unset or empty).

    Raises
    ------
    SongsimError
        The value is not a whole number of at least ``minimum``.
    """
    from songsim.errors import SongsimError

    text = os.environ.get(name, "").strip().replace("_", "")
    if not text:
        return default
    if not text.isdigit() or int(text) < minimum:
        raise SongsimError(f"{name}={os.environ[name]!r} is not a whole number ≥ {minimum}: fix or unset it (default {default}).")
    return int(text)


def default_demo_dir() -> Path:
    """Where the app builds the embedded demo catalogue on first start."""
    return songsim_home() / "demo"


def derived_dir(catalogue_root: Path) -> Path:
    """``<catalogue>/.songsim``: features, fitted spaces, maps, indexes, uploads."""
    return Path(catalogue_root) / DERIVED_DIRNAME


def single_threaded_blas() -> threadpool_limits:
    """Limit BLAS to one thread (use as a context manager, or call once at an entry point).

    songsim's linear algebra is many small products (one query against the catalogue): on a
    busy 2-core machine, multithreaded OpenBLAS made them 10–50× slower (8 ms instead of
    0.2 ms a query). torch's own threads are not affected.
    """
    return threadpool_limits(limits=1, user_api="blas")

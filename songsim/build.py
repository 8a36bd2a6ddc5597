"""Build a catalogue: features → spaces → maps, each stage stored in ``<catalogue>/.songsim``.

Every stage is keyed by a fingerprint of its inputs and settings, so a rebuild redoes only
what changed (a new or edited audio file invalidates its own features and the stages fitted on
the whole set), and a crash loses nothing already stored: every file is written atomically.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from songsim import config
from songsim.config import DEFAULT_MAP_METHODS
from songsim import literature  # noqa: F401 - registers the literature's spaces (it imports, so follows, the learned ones)
from songsim.catalogue import Catalogue, load_catalogue
from songsim.errors import NotBuiltError, SongsimError
from songsim.features import extract_features, feature_backend
from songsim.files import read_json, write_json
from songsim.learned import LearnedSpace, TrainingOptions  # also registers the learned spaces and the ae2d map
from songsim.maps import MAP_SAMPLE_SIZE, MIN_ROWS, FittedMap, fit_map, load_map, map_methods, save_map
from songsim.measure import metadata_matrix
from songsim.neighbours import DEFAULT_ANNOY_ABOVE, make_index
from songsim.spaces import (
    Space,
    is_current_version,
    load_space,
    save_space,
    space_dir,
    space_fit_key,
    space_names,
    space_type,
    stored_fit_key,
    stored_meta,
)

#: the app's demo is FLAC: Vorbis encoding would double the first start on 2 cores (~210 MB)
DEMO_AUDIO_FORMAT = "flac"
#: spaces the app builds on first start (fast: no training); others are built on request
DEFAULT_SPACES = ("handcrafted", "random")
FEATURES_VERSION = "handcrafted-v1"

#: on_progress(stage, fraction_done 0–1, message)
ProgressFn = Callable[[str, float, str], None]


@dataclass
class BuildReport:
    """What a build did: seconds per stage, and which artefacts were made, reused or skipped."""

    n_tracks: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    built: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    #: feature kind → {"computed": tracks analysed by this build, "reused": tracks found in the cache}
    features: dict[str, dict[str, int]] = field(default_factory=dict)
    #: where missing features are computed: "local, N processes" or "dask tcp://HOST:8786"
    feature_backend: str = ""

    def count_features(self, kind: str, *, cached: int, total: int) -> None:
        """Record one extraction of ``kind``: ``cached`` of ``total`` tracks were in the cache
        (a kind extracted again for another space counts its tracks once, as reused)."""
        counts = self.features.setdefault(kind, {"computed": 0, "reused": 0})
        if counts["computed"] + counts["reused"] == 0:
            counts.update(computed=total - cached, reused=cached)

    def as_dict(self) -> dict:
        return {
            "n_tracks": self.n_tracks,
            "stage_seconds": {k: round(v, 2) for k, v in self.stage_seconds.items()},
            "features": self.features,
            "feature_backend": self.feature_backend,
            "built": self.built,
            "reused": self.reused,
            "skipped": self.skipped,
        }


def features_cache_dir(catalogue: Catalogue) -> Path:
    """Per-track feature cache, shared by catalogue tracks and uploads (keyed by content)."""
    return catalogue.derived_dir / "features"


def space_inputs(
    space_cls: type[Space],
    catalogue: Catalogue,
    *,
    paths: Sequence[Path],
    fingerprints: Sequence[str],
    keys: Sequence[str],
    dependency_vectors: Callable[[str], np.ndarray],
    n_jobs: int | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    dask_address: str | None = None,
) -> dict[str, Any]:
    """The inputs a space consumes (see :mod:`songsim.spaces`) for m songs.

    Parameters
    ----------
    paths, fingerprints : sequence
        The songs' audio files and their content fingerprints (the feature cache key).
    keys : sequence of str
        Track ids for catalogue songs, content fingerprints for uploads.
    dependency_vectors : callable
        ``dependency_vectors(space_name) -> (m, dim)``: the songs in another space, for
        ``"space:<name>"`` inputs (catalogue vectors, or an upload embedded there).
    on_progress : callable, optional
        ``on_progress(feature_kind, n_tracks_done, n_tracks)`` during feature extraction; its
        first call for a kind counts the tracks already in the cache as done.
    n_jobs, dask_address : optional
        Where missing features are computed: ``n_jobs`` local processes (default: every
        core), or the Dask cluster whose scheduler is at ``dask_address``
        (:func:`songsim.features.extract_features`).
    """
    values: dict[str, Any] = {}
    for name in space_cls.inputs:
        if name in ("handcrafted", "mel", "chroma"):  # per-frame kinds are large: memory-map them
            values[name] = extract_features(
                list(paths),
                list(fingerprints),
                kind=name,
                cache_dir=features_cache_dir(catalogue),
                n_jobs=n_jobs,
                dask_address=dask_address,
                on_progress=None if on_progress is None else (lambda done, total, kind=name: on_progress(kind, done, total)),
                mmap_mode=None if name == "handcrafted" else "r",
            )
        elif name == "metadata":  # catalogue row by track id or identical audio, else measured
            values[name] = metadata_matrix(
                catalogue, paths=paths, fingerprints=fingerprints, keys=keys, cache_dir=features_cache_dir(catalogue)
            )
        elif name == "key":
            values[name] = list(keys)
        elif name.startswith("space:"):
            values[name] = dependency_vectors(name.removeprefix("space:"))
        else:
            raise ValueError(f"space {space_cls.name!r} asks for an unknown input {name!r}")
    return values


def space_dependencies(space_cls: type[Space]) -> list[str]:
    """Names of the spaces whose vectors ``space_cls`` consumes."""
    return [name.removeprefix("space:") for name in space_cls.inputs if name.startswith("space:")]


def map_path(catalogue: Catalogue, space_name: str, method: str) -> Path:
    """Where the fitted ``method`` map of ``space_name`` is stored."""
    return space_dir(catalogue.derived_dir, space_name) / "maps" / f"{method}.pkl"


#: the label a large catalogue's map sample is stratified by (when the catalogue has it)
MAP_SAMPLE_STRATA = "genre"


def _map_strata(catalogue: Catalogue) -> np.ndarray | None:
    return catalogue.labels(MAP_SAMPLE_STRATA) if catalogue.has_labels(MAP_SAMPLE_STRATA) else None


def map_fit_key(catalogue: Catalogue, space_name: str, method: str, *, seed: int = 0) -> str:
    """The key a map fitted now would be stored with: the space's stored fit key, the method,
    the seed and — where the method fits on a sample of a large catalogue (maps.py docstring)
    — the sample size and the labels it is stratified by."""
    key = f"{stored_fit_key(space_dir(catalogue.derived_dir, space_name))}-{method}-seed{seed}"
    sample_size = map_sample_size()
    if len(catalogue) > sample_size and not map_methods()[method].fit_on_all:
        strata = _map_strata(catalogue)
        labels = "none" if strata is None else hashlib.sha256("\0".join(map(str, strata)).encode()).hexdigest()[:12]
        key += f"-sample{sample_size}-by-{MAP_SAMPLE_STRATA}-{labels}"
    return key


def map_is_current(catalogue: Catalogue, space_name: str, method: str, *, seed: int = 0) -> bool:
    """Whether the stored map was fitted on the space's current fit, with today's rule."""
    meta = read_json(map_path(catalogue, space_name, method).with_suffix(".json")) or {}
    return meta.get("fit_key") == map_fit_key(catalogue, space_name, method, seed=seed)


def fit_and_store_map(catalogue: Catalogue, space: Space, method: str, *, seed: int = 0) -> FittedMap:
    """Fit a 2-D map of ``space`` and store it beside the space (atomically). Above
    :data:`~songsim.maps.MAP_SAMPLE_SIZE` tracks the fitted sample keeps the genres' shares."""
    fitted = fit_map(space.vectors_, method=method, seed=seed, strata=_map_strata(catalogue), sample_size=map_sample_size())
    path = map_path(catalogue, space.name, method)
    save_map(fitted, path)
    write_json(
        path.with_suffix(".json"),
        {"fit_key": map_fit_key(catalogue, space.name, method, seed=seed), "trustworthiness": float(fitted.trustworthiness_)},
    )
    return fitted


def load_or_fit_map(catalogue: Catalogue, space: Space, method: str, *, seed: int = 0) -> FittedMap:
    """The stored map if current, else a fresh fit that is then stored."""
    if map_is_current(catalogue, space.name, method, seed=seed):
        return load_map(map_path(catalogue, space.name, method))
    return fit_and_store_map(catalogue, space, method, seed=seed)


def missing_labels(space_cls: type[Space], catalogue: Catalogue) -> list[str]:
    """Label columns ``space_cls`` needs that the catalogue lacks."""
    return [c for c in space_cls.required_labels if not catalogue.has_labels(c)]


def build(
    root: str | Path,
    *,
    spaces: Sequence[str] | None = None,
    map_methods: Sequence[str] = DEFAULT_MAP_METHODS,
    seed: int = 0,
    n_jobs: int | None = None,
    on_progress: ProgressFn | None = None,
    training: TrainingOptions | None = None,
    dask_address: str | None = None,
) -> BuildReport:
    """Build (or bring up to date) everything the app and CLI need for the catalogue at ``root``.

    Parameters
    ----------
    spaces : sequence of str, optional
        Space names to build; default: every registered space.
    map_methods : sequence of str
        2-D map methods fitted for every space.
    seed : int
        Seed of every stochastic fit.
    n_jobs : int, optional
        Processes for feature extraction (default: every core).
    dask_address : str, optional
        Scheduler address of a Dask distributed cluster (``"tcp://HOST:8786"``) that computes
        the missing features instead of local processes; the audio must be mounted at the
        same path on every worker, and this process writes the cache
        (:func:`songsim.features.extract_features`).
    on_progress : callable, optional
        ``on_progress(stage, fraction_done, message)``.
    training : songsim.learned.TrainingOptions, optional
        Device, epochs and per-epoch progress for the learned spaces (an epochs override is
        part of their fit key, so changing it retrains them).
    """
    report_progress: ProgressFn = on_progress or (lambda stage, fraction, message: None)
    started = time.perf_counter()
    report_progress("catalogue", 0.0, "checking tracks.csv and audio files")
    catalogue = load_catalogue(root, check_audio=True)
    with _build_lock(catalogue, report_progress):
        removed = remove_stale_temporaries(catalogue.derived_dir)
        if removed:
            report_progress("catalogue", 0.0, f"removed {removed} half-written files left by an interrupted build")
        return _build_locked(
            catalogue, spaces=spaces, map_methods=map_methods, seed=seed, n_jobs=n_jobs,
            report_progress=report_progress, training=training, started=started, dask_address=dask_address,
        )


def _build_locked(
    catalogue: Catalogue,
    *,
    spaces: Sequence[str] | None,
    map_methods: Sequence[str],
    seed: int,
    n_jobs: int | None,
    report_progress: ProgressFn,
    training: TrainingOptions | None,
    started: float,
    dask_address: str | None = None,
) -> BuildReport:
    """The body of :func:`build`, run while holding the catalogue's build lock."""
    fingerprints = catalogue.audio_fingerprints()
    catalogue_key = catalogue.fingerprint(fingerprints)
    report = BuildReport(n_tracks=len(catalogue), feature_backend=feature_backend(n_jobs=n_jobs, dask_address=dask_address))
    report.stage_seconds["catalogue"] = time.perf_counter() - started

    names = list(spaces) if spaces is not None else space_names()
    space_classes = [space_type(name) for name in in_build_order(names)]
    labels = {c: catalogue.labels(c) for c in catalogue.tracks.columns}
    fitted_spaces: dict[str, Space] = {}
    for index, cls in enumerate(space_classes):
        lacking = missing_labels(cls, catalogue)
        unbuilt = [d for d in space_dependencies(cls) if d not in fitted_spaces]
        if lacking or unbuilt:
            report.skipped[cls.name] = (
                f"the catalogue has no {', '.join(lacking)} labels" if lacking else f"it needs {', '.join(unbuilt)}, which was skipped"
            )
            continue
        stage = f"space:{cls.name}"
        stage_started = time.perf_counter()
        folder = space_dir(catalogue.derived_dir, cls.name)
        options = replace(training or TrainingOptions(), catalogue_fingerprint=catalogue_key)
        key = current_fit_key(cls, catalogue, catalogue_key, seed=seed, training=options)
        options = replace(options, resume_path=str(folder / TRAINING_STATE_FILE), resume_key=key)
        stored = _load_current_space(folder, key)
        if stored is not None:
            fitted_spaces[cls.name] = stored
            report.reused.append(cls.name)
            continue
        report_progress(stage, 0.0, f"{cls.name}: computing inputs for {len(catalogue)} tracks")
        inputs = space_inputs(
            cls,
            catalogue,
            paths=catalogue.tracks["path"].map(Path).tolist(),
            fingerprints=fingerprints,
            keys=catalogue.track_ids,
            dependency_vectors=lambda name: fitted_spaces[name].vectors_,
            n_jobs=n_jobs,
            dask_address=dask_address,
            on_progress=lambda kind, done, total, name=cls.name: (
                report.count_features(kind, cached=done, total=total),
                report_progress("features", done / max(total, 1), f"{name}: {kind} features {done}/{total} tracks ({report.feature_backend})"),
            ),
        )
        report_progress(stage, 0.5, f"{cls.name}: fitting")
        fit_started = time.perf_counter()
        space = cls().fit(inputs, labels=labels, seed=seed, **({"training": options} if issubclass(cls, LearnedSpace) else {}))
        save_space(space, folder, fit_key=key, fit_seconds=time.perf_counter() - fit_started)
        (folder / TRAINING_STATE_FILE).unlink(missing_ok=True)  # the trained model is stored now
        fitted_spaces[cls.name] = space
        report.built.append(cls.name)
        report.stage_seconds[stage] = time.perf_counter() - stage_started
        report_progress(stage, 1.0, f"{cls.name}: {space.dim}-d, fitted ({index + 1}/{len(space_classes)} spaces)")

    n_maps = len(fitted_spaces) * len(map_methods)
    for i, (space, method) in enumerate((s, m) for s in fitted_spaces.values() for m in map_methods):
        name = f"map:{space.name}/{method}"
        if map_is_current(catalogue, space.name, method, seed=seed):
            report.reused.append(name)
            continue
        report_progress("maps", i / max(n_maps, 1), f"fitting the {method.upper()} map of {space.name}")
        stage_started = time.perf_counter()
        fit_and_store_map(catalogue, space, method, seed=seed)
        report.built.append(name)
        report.stage_seconds[name] = time.perf_counter() - stage_started
    report_progress("done", 1.0, f"built {len(report.built)}, reused {len(report.reused)}")
    report.stage_seconds["total"] = time.perf_counter() - started
    return report


#: a learned space's training state after its last finished epoch, while it trains
#: (:class:`songsim.train.ResumeFile`): a killed build resumes the training from there
TRAINING_STATE_FILE = "training-state.pt"
#: a build waits this long for another build of the same catalogue before giving up
BUILD_LOCK_TIMEOUT_S = 6 * 3600.0
#: half-written temporaries (:func:`songsim.files.atomic_write`) older than this are debris
#: of a killed process; younger ones may belong to a live writer outside the build (an upload)
STALE_TEMPORARY_AGE_S = 60.0


@contextmanager
def _build_lock(catalogue: Catalogue, report_progress: ProgressFn) -> Iterator[None]:
    """Hold ``<catalogue>/.songsim/build.lock``: two builds of one catalogue (the app and the
    CLI, two app sessions) run one after the other instead of fitting the same stages twice.
    The lock is released when its process dies, so a killed build never blocks the next."""
    catalogue.derived_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(catalogue.derived_dir / "build.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        report_progress("catalogue", 0.0, "waiting for another build of this catalogue to finish")
        try:
            lock.acquire(timeout=BUILD_LOCK_TIMEOUT_S)
        except Timeout:
            raise SongsimError(
                f"{catalogue.root}: another build has held {lock.lock_file} for {BUILD_LOCK_TIMEOUT_S / 3600:.0f} h. "
                "Stop that build (or the app running it) and build again."
            ) from None
    try:
        yield
    finally:
        lock.release()


def remove_stale_temporaries(folder: Path, *, min_age_s: float = STALE_TEMPORARY_AGE_S) -> int:
    """Delete the hidden ``.<name>.<hex>.tmp`` files that :func:`songsim.files.atomic_write`
    leaves when its process is killed mid-write, under ``folder``; returns how many."""
    now = time.time()
    removed = 0
    for path in folder.rglob(".*.tmp"):
        try:
            if now - path.stat().st_mtime >= min_age_s:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # its writer finished meanwhile
            continue
    return removed


def _load_current_space(folder: Path, key: str) -> Space | None:
    """The space stored in ``folder`` if it was fitted with ``key`` and loads; ``None`` means
    fit it (again): a stored file that no longer loads is refitted, not an error."""
    if stored_fit_key(folder) != key:
        return None
    try:
        return load_space(folder)
    except SongsimError:
        return None


def current_fit_key(
    space_cls: type[Space], catalogue: Catalogue, catalogue_key: str, *, seed: int = 0, training: TrainingOptions | None = None
) -> str:
    """The fit key :func:`build` gives ``space_cls`` now: the catalogue fingerprint
    (``catalogue_key``, :meth:`Catalogue.fingerprint`), the feature settings, the stored fit
    keys of the spaces it builds on, the seed and — for a learned space — the epochs override of
    ``training`` (:attr:`songsim.learned.TrainingOptions.fit_tag`). A stored fit with this key
    is current."""
    upstream = "-".join(stored_fit_key(space_dir(catalogue.derived_dir, d)) or "" for d in space_dependencies(space_cls))
    tag = (training or TrainingOptions()).fit_tag if issubclass(space_cls, LearnedSpace) else ""
    return space_fit_key(space_cls, f"{catalogue_key}-{FEATURES_VERSION}-{upstream}{tag}", seed)


def in_build_order(names: Sequence[str]) -> list[str]:
    """``names`` plus every space they depend on, each after its dependencies."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name not in ordered:
            for dependency in space_dependencies(space_type(name)):
                visit(dependency)
            ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def built_space_names(catalogue: Catalogue) -> list[str]:
    """Registered spaces with a stored fit of their current version in this catalogue, in
    registry order (a fit by an older songsim must be rebuilt before it is used)."""
    return [n for n in space_names() if is_current_version(space_type(n), stored_fit_key(space_dir(catalogue.derived_dir, n)))]



def is_built(
    root: str | Path, *, spaces: Sequence[str] = DEFAULT_SPACES, map_methods: Sequence[str] = DEFAULT_MAP_METHODS
) -> bool:
    """Cheap check (no hashing) that ``root`` has a tracks.csv and stored fits and maps of
    ``spaces``; staleness after audio changes is what :func:`build` detects."""
    root = Path(root)
    derived = config.derived_dir(root)
    if not (root / "tracks.csv").is_file():
        return False
    for name in spaces:
        folder = space_dir(derived, name)
        if stored_fit_key(folder) is None:
            return False
        if not all((folder / "maps" / f"{m}.json").is_file() for m in map_methods):
            return False
    return True


def prepare_catalogue(
    root: str | Path, *, make_demo_if_missing: bool, on_progress: ProgressFn | None = None
) -> BuildReport:
    """Make the demo (when asked and ``root`` has no tracks.csv), then build it.

    This is what the app runs on first start, under a progress display.
    """
    root = Path(root)
    if make_demo_if_missing and not (root / "tracks.csv").is_file():
        from songsim.demo import make_demo

        make_demo(
            root,
            audio_format=DEMO_AUDIO_FORMAT,
            on_progress=None
            if on_progress is None
            else lambda done, total, message: on_progress("demo", done / max(total, 1), f"rendering {done}/{total}: {message}"),
        )
    return build(root, spaces=DEFAULT_SPACES, on_progress=on_progress)


def open_index(catalogue: Catalogue, space: Space, *, metric: str):
    """The neighbour index of a fitted space: exact up to ``$SONGSIM_ANNOY_ABOVE`` tracks
    (default :data:`songsim.neighbours.DEFAULT_ANNOY_ABOVE`), else an annoy index stored beside
    the space (memory-mapped, so every app session shares one copy)."""
    return make_index(
        space.vectors_, metric=metric, path=space_dir(catalogue.derived_dir, space.name) / f"annoy-{metric}.ann",
        annoy_above=config.size_setting(config.ANNOY_ABOVE_ENV, DEFAULT_ANNOY_ABOVE, minimum=0),
    )


def map_sample_size() -> int:
    """Tracks above which UMAP, t-SNE and the 2-D autoencoder fit on a sample and place the
    rest: ``$SONGSIM_MAP_SAMPLE_SIZE``, default :data:`songsim.maps.MAP_SAMPLE_SIZE`."""
    return config.size_setting(config.MAP_SAMPLE_SIZE_ENV, MAP_SAMPLE_SIZE, minimum=MIN_ROWS)


def load_built_space(catalogue: Catalogue, name: str) -> Space:
    """The fitted space ``name`` stored in this catalogue (:class:`NotBuiltError` if none, or
    if it was fitted by an older version of the space's algorithm)."""
    cls = space_type(name)
    folder = space_dir(catalogue.derived_dir, name)
    key = stored_fit_key(folder)
    if key is not None and not is_current_version(cls, key):
        raise NotBuiltError(
            f"Space {name!r} in {catalogue.root} was fitted by an older songsim (its algorithm is now version "
            f"{cls.version}): rebuild it with `python -m songsim build {catalogue.root} --spaces {name}` or on the Models page."
        )
    return load_space(folder)


def space_states(catalogue: Catalogue) -> list[dict]:
    """One row per registered space: its state in this catalogue ("built", "not built", the
    labels it lacks, or the unbuildable space it needs), dim, fit seconds, when it was fitted,
    and what it is."""
    built = set(built_space_names(catalogue))
    rows, state_of = [], {}
    for name in in_build_order(space_names()):
        cls = space_type(name)
        meta = stored_meta(space_dir(catalogue.derived_dir, name))
        lacking = missing_labels(cls, catalogue)
        blocked = [d for d in space_dependencies(cls) if state_of[d].startswith("needs")]
        if name in built:
            state = "built"
        elif lacking:
            state = f"needs {', '.join(lacking)} labels"
        elif blocked:
            state = f"needs the {', '.join(blocked)} space"
        else:
            state = "not built"
        state_of[name] = state
        rows.append({
            "space": name, "state": state, "dim": meta.get("dim"), "fit_seconds": meta.get("fit_seconds"),
            "fitted_at": meta.get("fitted_at"), "description": cls.description,
        })
    return rows

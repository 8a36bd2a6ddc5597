"""Build a catalogue: features → spaces → maps, each stage stored in ``<catalogue>/.songsim``.

Every stage is keyed by a fingerprint of its inputs and settings, so a rebuild redoes only
what changed (a new or edited audio file invalidates its own features and the stages fitted on
the whole set), and a crash loses nothing already stored: every file is written atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from filelock import FileLock, Timeout

from songsim import config
from songsim.catalogue import Catalogue, load_catalogue
from songsim.config import DEFAULT_MAP_METHODS
from songsim.errors import SongsimError, SpaceOutputError
from songsim.features import feature_backend
from songsim.maps import MAP_PURPOSE
from songsim.signed import trust_problem
from songsim.spaces.base import (
    SPACE_INPUT_PREFIX,
    Space,
    TrainingOptions,
    checked_vectors,
    space_dependencies,
    space_names,
    space_type,
)
from songsim.spaces.imported import ImportedSpace, imported_space_names
from songsim.spaces.inputs import space_inputs
from songsim.spaces.store import (
    SPACE_FILE,
    TRAINING_STATE_FILE,
    build_order,
    current_fit_key,
    fit_and_store_map,
    load_built_space,
    load_current_space,
    map_is_current,
    missing_labels,
    save_space,
    space_dir,
    space_info,
    space_trust_problem,
    stored_fit_key,
    used_inputs,
)

#: the app's demo is FLAC: Vorbis encoding would double the first start on 2 cores (~210 MB)
DEMO_AUDIO_FORMAT = "flac"
#: spaces the app builds on first start (fast: no training); others are built on request
DEFAULT_SPACES = ("handcrafted", "random")

#: on_progress(stage, fraction_done 0–1, message)
ProgressFn = Callable[[str, float, str], None]


@dataclass
class BuildReport:
    """What a build did: seconds per stage, and which artefacts were made, reused or skipped."""

    n_tracks: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    built: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    #: space -> why it was not built: labels the catalogue lacks, a space it needs was skipped, or
    #: its fit gave unusable vectors (:func:`songsim.spaces.base.checked_vectors`)
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
        Space names to build (registered, or imported into the catalogue: only their maps are
        fitted); default: every registered space and every imported one.
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
    training : songsim.spaces.base.TrainingOptions, optional
        Device, epochs and per-epoch progress for the trainable spaces (an epochs override is
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

    names = list(spaces) if spaces is not None else [*space_names(), *imported_space_names(catalogue.derived_dir)]
    imported = [name for name in names if isinstance(space_info(catalogue, name), ImportedSpace)]
    # required inputs first, and the optional inputs each space uses here (store.used_inputs: a
    # built_on_request space such as musicnn only where stored or asked for in this build)
    space_classes = [space_type(name) for name in build_order(catalogue, [n for n in names if n not in imported])]
    building = [cls.name for cls in space_classes]
    labels = {c: catalogue.labels(c) for c in catalogue.tracks.columns}
    fitted_spaces: dict[str, Space] = {}
    for name in imported:  # stored by `songsim space import`: nothing to fit, only maps
        fitted_spaces[name] = load_built_space(catalogue, name)
        report.reused.append(name)
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
        # the optional inputs it can use, less any whose space this build did not make after all
        used = tuple(
            name for name in used_inputs(cls, catalogue, building=building)
            if not name.startswith(SPACE_INPUT_PREFIX) or name.removeprefix(SPACE_INPUT_PREFIX) in fitted_spaces
        )  # fmt: skip
        options = replace(training or TrainingOptions(), catalogue_fingerprint=catalogue_key)
        key = current_fit_key(cls, catalogue, catalogue_key, seed=seed, training=options, used=used)
        options = replace(options, resume_path=str(folder / TRAINING_STATE_FILE), resume_key=key)
        stored = load_current_space(folder, key)
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
            names=used,
        )
        report_progress(stage, 0.5, f"{cls.name}: fitting")
        fit_started = time.perf_counter()
        space = cls().fit(inputs, labels=labels, seed=seed, **({"training": options} if cls.trainable else {}))
        try:  # a space giving unusable vectors (a broken plug-in) is skipped: the others still build
            space.vectors_ = checked_vectors(space, getattr(space, "vectors_", None), n_songs=len(catalogue), method="fit")
        except SpaceOutputError as exc:
            report.skipped[cls.name] = str(exc)
            continue
        if getattr(space, "used_inputs_", None) is None:  # what transform gets for an upload
            space.used_inputs_ = used
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


def is_built(
    root: str | Path, *, spaces: Sequence[str] = DEFAULT_SPACES, map_methods: Sequence[str] = DEFAULT_MAP_METHODS
) -> bool:
    """Cheap check (no audio hashing) that ``root`` has a tracks.csv and stored fits and maps of
    ``spaces``, signed by this installation (:mod:`songsim.signed`; each file's signature is
    checked once per process and version of the file); staleness after audio changes is what
    :func:`build` detects. A catalogue copied from elsewhere is not built here until a build
    has refitted its spaces and maps (its features are reused)."""
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
    return not untrusted_files(root, spaces=spaces, map_methods=map_methods)


def untrusted_files(
    root: str | Path, *, spaces: Sequence[str] = DEFAULT_SPACES, map_methods: Sequence[str] = DEFAULT_MAP_METHODS
) -> list[str]:
    """The stored space and map files of ``spaces`` in the catalogue at ``root`` that this
    installation did not sign, each as ``"<path> <why>"`` (missing files are not listed):
    what a build refits before the catalogue counts as built (:func:`is_built`)."""
    derived = config.derived_dir(Path(root))
    found = []
    for name in spaces:
        folder = space_dir(derived, name)
        problems = [(folder / SPACE_FILE, space_trust_problem(folder))]
        problems += [(folder / "maps" / f"{m}.pkl", trust_problem(folder / "maps" / f"{m}.pkl", purpose=MAP_PURPOSE)) for m in map_methods]
        found += [f"{path} {problem}" for path, problem in problems if problem not in (None, "is missing")]
    return found


def prepare_catalogue(
    root: str | Path, *, make_demo_if_missing: bool, on_progress: ProgressFn | None = None
) -> BuildReport:
    """Make the demo (when asked and ``root`` has no tracks.csv), then build it.

    This is what the app runs on first start, under a progress display.
    """
    root = Path(root)
    if make_demo_if_missing and not (root / "tracks.csv").is_file():
        from songsim.demo.render import make_demo

        make_demo(
            root,
            audio_format=DEMO_AUDIO_FORMAT,
            on_progress=None
            if on_progress is None
            else lambda done, total, message: on_progress("demo", done / max(total, 1), f"rendering {done}/{total}: {message}"),
        )
    return build(root, spaces=DEFAULT_SPACES, on_progress=on_progress)

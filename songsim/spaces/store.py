"""Where a catalogue's fitted spaces, maps and indexes live, and when they are current.

Layout inside ``<catalogue>/.songsim/``::

    features/<kind>/...          the per-track feature cache (songsim.features), keyed by content
    spaces/<name>/space.joblib   a fitted space (save_space / load_space)
    spaces/<name>/meta.json      its fit key, dim, n_tracks, fit seconds, fitted-at time, inputs used
    spaces/<name>/training-state.pt   a trainable space's state after its last finished epoch
    spaces/<name>/maps/<method>.pkl   a fitted 2-D map; <method>.json: its fit key, trustworthiness
    spaces/<name>/annoy-<metric>.ann  the annoy index of a large catalogue (memory-mapped)

Spaces and maps are pickles, signed with this installation's key (:mod:`songsim.signed`): one
this installation did not write is never unpickled, counts as not built, and ``build`` refits it.

A **fit key** is the fingerprint of everything a fit depends on: the space's name, algorithm
version and seed, the catalogue's fingerprint, the feature settings, the fit keys of the
spaces it builds on, which optional inputs it uses (:func:`used_inputs`, the one rule for
that), a plug-in's package version and — for a trainable space — an epochs override
(:func:`current_fit_key`). A stored fit whose key equals the key computed now is current;
:mod:`songsim.stages` turns these keys into the states the pages show, and
:func:`songsim.build.build` refits what is not current. A map's key extends its space's.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from songsim import config
from songsim.catalogue import Catalogue, load_catalogue
from songsim.errors import ImportedSpaceError, NotBuiltError, SongsimError, UnknownSpaceError
from songsim.signed import catalogue_root_of, dump_signed, load_signed, trust_problem
from songsim.files import read_json, write_json
from songsim.maps import MAP_PURPOSE, MAP_SAMPLE_SIZE, MIN_ROWS, FittedMap, fit_map, load_map, map_methods, save_map
from songsim.neighbours import DEFAULT_ANNOY_ABOVE, PRECOMPUTED, HubnessReducedIndex, NeighbourIndex, make_index
from songsim.spaces.base import (
    SPACE_INPUT_PREFIX,
    Space,
    TrainingOptions,
    covered_rows,
    fitted_inputs,
    in_build_order,
    input_space_names,
    plugin_source,
    space_dependencies,
    space_names,
    space_type,
)
from songsim.spaces.imported import (
    ImportedSpace,
    ImportReport,
    check_space_name,
    import_distance_space,
    import_space,
    imported_space_names,
    is_imported,
    load_imported,
)

SPACE_FILE = "space.joblib"
#: what a space file is signed as (:mod:`songsim.signed`)
SPACE_PURPOSE = "space"
META_FILE = "meta.json"
#: version tag of the feature settings inside every fit key
FEATURES_VERSION = "handcrafted-v1"
#: a trainable space's training state after its last finished epoch, while it trains
#: (:class:`songsim.train.ResumeFile`): a killed build resumes the training from there
TRAINING_STATE_FILE = "training-state.pt"
#: the label a large catalogue's map sample is stratified by (when the catalogue has it)
MAP_SAMPLE_STRATA = "genre"


def space_dir(derived_dir: Path, name: str) -> Path:
    """Folder of one fitted space inside ``<catalogue>/.songsim``."""
    return Path(derived_dir) / "spaces" / name


def space_fit_key(space_cls: type[Space], inputs_fingerprint: str, seed: int) -> str:
    """The fingerprint a stored fit must carry to be current."""
    return f"{space_cls.name}-v{space_cls.version}-seed{seed}-{inputs_fingerprint}"


def is_current_version(space_cls: type[Space], fit_key: str | None) -> bool:
    """Whether a stored fit key was made by this version of the space's algorithm (a fit of an
    older version may take other inputs: it cannot embed uploads, and counts as not built)."""
    return fit_key is not None and fit_key.startswith(f"{space_cls.name}-v{space_cls.version}-")


def save_space(space: Space, folder: Path, *, fit_key: str, fit_seconds: float) -> None:
    """Store a fitted space atomically (a crash never leaves a half-written fit behind)."""
    dump_signed(space, folder / SPACE_FILE, purpose=SPACE_PURPOSE, joblib_format=True)
    write_json(
        folder / META_FILE,
        {
            "name": space.name,
            "fit_key": fit_key,
            "dim": space.dim,
            "n_tracks": int(space.vectors_.shape[0]),
            "fit_seconds": round(fit_seconds, 3),
            "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "inputs": list(fitted_inputs(space)),
        },
    )


def stored_meta(folder: Path) -> dict:
    """What :func:`save_space` recorded (fit key, dim, n_tracks, fit_seconds, fitted_at);
    empty when nothing is stored."""
    return read_json(folder / META_FILE) or {}


def stored_fit_key(folder: Path) -> str | None:
    """The fit key of the space stored in ``folder``, or ``None`` if there is none."""
    return stored_meta(folder).get("fit_key")


def _rebuild_space_hint(folder: Path) -> str:
    """The command that refits the space stored in ``folder`` (a fold's: its space's folds)."""
    folder = Path(folder)
    root = catalogue_root_of(folder)
    if folder.parent.name != "spaces":
        return f"`python -m songsim build {root}` or `evaluate --folds` again (its folds are refitted)"
    return f"`python -m songsim build {root} --spaces {folder.name}` (or on the Models page)"


def load_space(folder: Path) -> Space:
    """Load a fitted space stored by :func:`save_space`: only once its signature shows this
    installation wrote it (:mod:`songsim.signed`; :class:`UntrustedFileError` otherwise, and
    nothing of the file is unpickled)."""
    path = folder / SPACE_FILE
    if not path.is_file():
        raise NotBuiltError(f"No fitted space in {folder}: run `python -m songsim build` on the catalogue.")
    try:
        return load_signed(path, purpose=SPACE_PURPOSE, joblib_format=True, hint=_rebuild_space_hint(folder))
    except SongsimError:
        raise
    except (ModuleNotFoundError, AttributeError) as exc:  # a class an older songsim kept elsewhere
        raise NotBuiltError(
            f"{path} was stored by an older songsim ({exc}): rebuild it with "
            f"`python -m songsim build {folder.parents[2]} --spaces {folder.name}`."
        ) from None
    except Exception as exc:  # a truncated or foreign file
        raise SongsimError(f"{path} is unreadable ({exc}): delete it and run `python -m songsim build` again.") from None


def features_cache_dir(catalogue: Catalogue) -> Path:
    """Per-track feature cache, shared by catalogue tracks and uploads (keyed by content)."""
    return catalogue.derived_dir / "features"


def map_path(catalogue: Catalogue, space_name: str, method: str) -> Path:
    """Where the fitted ``method`` map of ``space_name`` is stored."""
    return space_dir(catalogue.derived_dir, space_name) / "maps" / f"{method}.pkl"


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
    """Whether the stored map was fitted on the space's current fit, with today's rule, and
    signed by this installation (:func:`map_trust_problem`: a map from elsewhere is refitted)."""
    meta = read_json(map_path(catalogue, space_name, method).with_suffix(".json")) or {}
    if meta.get("fit_key") != map_fit_key(catalogue, space_name, method, seed=seed):
        return False
    return map_trust_problem(catalogue, space_name, method) is None


def space_trust_problem(folder: Path) -> str | None:
    """Why the fitted space stored in ``folder`` would be refused as not this installation's
    (:func:`songsim.signed.trust_problem`: unsigned, another installation's key, changed since,
    missing), or ``None`` when it would load; an imported space (numbers, never a pickle) has
    none. Memoised per file version: cheap on every rerun."""
    if is_imported(stored_meta(folder)):
        return None
    return trust_problem(Path(folder) / SPACE_FILE, purpose=SPACE_PURPOSE)


def map_trust_problem(catalogue: Catalogue, space_name: str, method: str) -> str | None:
    """:func:`space_trust_problem` for the stored ``method`` map of ``space_name``."""
    return trust_problem(map_path(catalogue, space_name, method), purpose=MAP_PURPOSE)


def fit_and_store_map(catalogue: Catalogue, space: Space, method: str, *, seed: int = 0) -> FittedMap:
    """Fit a 2-D map of ``space`` and store it beside the space (atomically). Above
    :data:`~songsim.maps.MAP_SAMPLE_SIZE` tracks the fitted sample keeps the genres' shares.
    Rows with no vector (:func:`~songsim.spaces.base.covered_rows`) are left out of the fit
    and get NaN coordinates (no point is drawn for them). A space that gives distances
    (metric ``"precomputed"``) is mapped from its distances between the covered tracks
    (:mod:`songsim.maps`, "Spaces that give distances")."""
    covered = covered_rows(space)
    strata = _map_strata(catalogue)
    precomputed = getattr(space, "metric", None) == PRECOMPUTED
    fitted = fit_map(
        space.vectors_ if covered.all() else space.vectors_[covered], method=method, seed=seed, strata=None if strata is None else strata[covered],
        sample_size=map_sample_size(), metric=PRECOMPUTED if precomputed else "cosine",
        columns=np.flatnonzero(covered) if precomputed and not covered.all() else None,
    )  # fmt: skip
    if not covered.all():
        coords = np.full((len(covered), 2), np.nan, dtype=np.float32)
        coords[covered] = fitted.coords_
        coords.setflags(write=False)
        fitted.coords_ = coords
    path = map_path(catalogue, space.name, method)
    save_map(fitted, path)
    write_json(
        path.with_suffix(".json"),
        {"fit_key": map_fit_key(catalogue, space.name, method, seed=seed), "trustworthiness": float(fitted.trustworthiness_)},
    )
    return fitted


def load_or_fit_map(catalogue: Catalogue, space: Space, method: str, *, seed: int = 0) -> FittedMap:
    """The stored map if current and readable, else a fresh fit that is then stored."""
    if map_is_current(catalogue, space.name, method, seed=seed):
        try:
            return load_map(map_path(catalogue, space.name, method))
        except SongsimError:  # damaged, pickled by an older songsim, or not signed here: refit it
            pass
    return fit_and_store_map(catalogue, space, method, seed=seed)


def missing_labels(space_cls: type[Space], catalogue: Catalogue) -> list[str]:
    """Label columns ``space_cls`` needs that the catalogue lacks."""
    return [c for c in space_cls.required_labels if not catalogue.has_labels(c)]


def labels_suffice(space_cls: type[Space], catalogue: Catalogue) -> bool:
    """Whether the catalogue has every label ``space_cls`` needs, and every label the spaces it
    needs (its required ``"space:<name>"`` inputs, recursively) need; registered spaces only."""
    if missing_labels(space_cls, catalogue):
        return False
    registered = space_names()
    return all(d in registered and labels_suffice(space_type(d), catalogue) for d in space_dependencies(space_cls))


def used_inputs(space_cls: type[Space], catalogue: Catalogue, *, building: Sequence[str] = ()) -> tuple[str, ...]:
    """The inputs ``space_cls`` uses on this catalogue: the one rule that ``build``, the stage
    states (:mod:`songsim.stages`), ``songsim spaces DIR`` and the Models page share.

    Every required input (``Space.inputs``), then — in declared order — each of its
    ``optional_inputs`` that is available:

    - an input that is not another space (features, metadata): always;
    - ``"space:<name>"``: a registered space whose labels, and those of the spaces it needs,
      the catalogue has (:func:`labels_suffice`); for a space that is
      :attr:`~songsim.spaces.base.Space.built_on_request` (``musicnn``), only where it is
      already stored or among ``building`` — so asking for ``fusion-ae`` never starts a
      slow musicnn computation, while ``build --spaces musicnn,fusion-ae`` uses it.

    Parameters
    ----------
    building : sequence of str
        The spaces the build being planned makes (with their required dependencies);
        ``()`` for the state of what is stored (stages, Models page).

    Returns
    -------
    tuple of str
        Input names, required first; a build that finds a used space unbuilt after all (its fit
        failed) drops it at fitting time.
    """
    used = list(space_cls.inputs)
    registered = space_names()
    for name in getattr(space_cls, "optional_inputs", ()):
        if name in used:
            continue
        if name.startswith(SPACE_INPUT_PREFIX):
            dependency = name.removeprefix(SPACE_INPUT_PREFIX)
            if dependency not in registered or not labels_suffice(space_type(dependency), catalogue):
                continue
            if (
                space_type(dependency).built_on_request
                and dependency not in building
                and stored_fit_key(space_dir(catalogue.derived_dir, dependency)) is None
            ):
                continue
        used.append(name)
    return tuple(used)


def build_order(catalogue: Catalogue, names: Sequence[str], *, building: Sequence[str] | None = None) -> list[str]:
    """``names`` plus every space they build on in this catalogue — their required inputs and
    the optional ones :func:`used_inputs` grants — each after the spaces it builds on.

    ``building``: what :func:`used_inputs` counts as built by this build; default ``names``
    with their required dependencies (what ``build`` makes); ``()`` to plan from what is
    stored (the stage states). A space the catalogue lacks labels for brings only its required
    inputs (the build reports it skipped): it uses nothing, so no optional input is built for it.
    """
    building = in_build_order(list(names)) if building is None else list(building)

    def dependencies(cls: type[Space]) -> list[str]:
        if not labels_suffice(cls, catalogue):
            return space_dependencies(cls)
        return input_space_names(used_inputs(cls, catalogue, building=building))

    return in_build_order(list(names), dependencies=dependencies)


def load_current_space(folder: Path, key: str) -> Space | None:
    """The space stored in ``folder`` if it was fitted with ``key`` and loads; ``None`` means
    fit it (again): a stored file that no longer loads is refitted, not an error."""
    if stored_fit_key(folder) != key:
        return None
    try:
        return load_space(folder)
    except SongsimError:
        return None


def current_fit_key(
    space_cls: type[Space],
    catalogue: Catalogue,
    catalogue_key: str,
    *,
    seed: int = 0,
    training: TrainingOptions | None = None,
    used: Sequence[str] | None = None,
) -> str:
    """The fit key :func:`build` gives ``space_cls`` now: the catalogue fingerprint
    (``catalogue_key``, :meth:`Catalogue.fingerprint`), the feature settings, the stored fit
    keys of the spaces it builds on, the seed and — for a trainable space — the epochs override of
    ``training`` (:attr:`songsim.spaces.base.TrainingOptions.fit_tag`); for a plug-in space, its
    package's version too (upgrading the package refits it); for a space with optional inputs,
    which of them it uses (``used``, default :func:`used_inputs` of what is stored), so a
    catalogue that gains (or loses) one refits it. A stored fit with this key is current."""
    used = used_inputs(space_cls, catalogue) if used is None else tuple(used)
    upstream = "-".join(stored_fit_key(space_dir(catalogue.derived_dir, d)) or "" for d in input_space_names(used))
    plugin = plugin_source(space_cls.name)
    release = f"-{plugin.package}-{plugin.package_version}" if plugin else ""
    tag = (training or TrainingOptions()).fit_tag if space_cls.trainable else ""
    chosen = ""
    if getattr(space_cls, "optional_inputs", ()):
        chosen = "-inputs" + hashlib.sha256(",".join(used).encode()).hexdigest()[:10]
    return space_fit_key(space_cls, f"{catalogue_key}-{FEATURES_VERSION}-{upstream}{chosen}{release}{tag}", seed)


def built_space_names(catalogue: Catalogue) -> list[str]:
    """Registered spaces with a stored fit of their current version in this catalogue, signed by
    this installation, in registry order (a fit by an older songsim, or one this installation did
    not write -- :mod:`songsim.signed` -- must be rebuilt before it is used), then the catalogue's
    imported spaces (:mod:`songsim.spaces.imported`), by name."""
    registered = [
        n for n in space_names()
        if is_current_version(space_type(n), stored_fit_key(space_dir(catalogue.derived_dir, n)))
        and trust_problem(space_dir(catalogue.derived_dir, n) / SPACE_FILE, purpose=SPACE_PURPOSE) is None
    ]  # fmt: skip
    return registered + imported_space_names(catalogue.derived_dir)


def space_info(catalogue: Catalogue, name: str) -> type[Space] | ImportedSpace:
    """What space ``name`` is in this catalogue — its class attributes (description, inputs,
    metric, embeds_uploads, …): the registered class, or an imported space's stored settings
    (no vectors loaded). :class:`UnknownSpaceError` names both kinds when it is neither."""
    meta = stored_meta(space_dir(catalogue.derived_dir, name))
    if name not in space_names() and is_imported(meta):
        return ImportedSpace(name=name, description=meta.get("description", ""), metric=meta.get("metric", "cosine"))
    try:
        return space_type(name)
    except UnknownSpaceError as exc:
        imported = imported_space_names(catalogue.derived_dir)
        raise UnknownSpaceError(f"{exc} Imported in {catalogue.root}: {', '.join(imported) or 'none'}.") from None


def open_index(catalogue: Catalogue, space: Space, *, metric: str, hubness: str = "none") -> NeighbourIndex:
    """The neighbour index of a fitted space: exact up to ``$SONGSIM_ANNOY_ABOVE`` tracks
    (default :data:`songsim.neighbours.DEFAULT_ANNOY_ABOVE`), else an annoy index stored beside
    the space (memory-mapped, so every app session shares one copy). With ``hubness``
    (:data:`songsim.neighbours.HUBNESS_METHODS`) other than ``"none"``: exact search over
    distances rescaled by mutual proximity or local scaling (:class:`HubnessReducedIndex`),
    whose statistics leave out the tracks the space has no vector for. A space that gives
    distances (``metric="precomputed"``) is searched by its rows (:class:`PrecomputedIndex`)."""
    if hubness != "none":
        return HubnessReducedIndex(space.vectors_, metric=metric, method=hubness, covered=covered_rows(space))
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
    folder = space_dir(catalogue.derived_dir, name)
    if isinstance(space_info(catalogue, name), ImportedSpace):
        return load_imported(catalogue, folder, stored_meta(folder))
    cls = space_type(name)
    key = stored_fit_key(folder)
    if key is not None and not is_current_version(cls, key):
        raise NotBuiltError(
            f"Space {name!r} in {catalogue.root} was fitted by an older songsim (its algorithm is now version "
            f"{cls.version}): rebuild it with `python -m songsim build {catalogue.root} --spaces {name}` or on the Models page."
        )
    return load_space(folder)


def import_vectors(
    root: str | Path,
    *,
    name: str,
    vectors: str | Path,
    ids: str | Path | None = None,
    metric: str = "cosine",
    description: str = "",
    source_label: str | None = None,
) -> ImportReport:
    """``python -m songsim space import``: validate a vectors file against the catalogue at
    ``root`` and store it as the imported space ``name`` (:mod:`songsim.spaces.imported`).
    Its maps are stale from then on (the fit key changed) and are refitted on first view or
    by ``build --spaces NAME``."""
    catalogue = load_catalogue(root)
    check_space_name(name, space_names())
    return import_space(
        catalogue, space_dir(catalogue.derived_dir, name), name=name, vectors=vectors, ids=ids, metric=metric,
        description=description, source_label=source_label,
    )  # fmt: skip


def import_vector_bytes(
    root: str | Path,
    *,
    name: str,
    vectors: tuple[str, bytes],
    ids: tuple[str, bytes] | None = None,
    metric: str = "cosine",
    description: str = "",
) -> ImportReport:
    """:func:`import_vectors` for files uploaded in the browser: ``(file name, content)``
    pairs, written to a temporary folder under fixed names (only the file name's extension
    is used) and validated from there; the stored record names the uploaded file."""
    return _import_uploads(
        {"vectors": vectors, "ids": ids},
        lambda paths: import_vectors(
            root, name=name, vectors=paths["vectors"], ids=paths["ids"], metric=metric, description=description,
            source_label=vectors[0],
        ),
    )  # fmt: skip


def import_distances(
    root: str | Path, *, name: str, distances: str | Path, description: str = "", source_label: str | None = None
) -> ImportReport:
    """``python -m songsim space import --distances``: validate a tab-separated distance matrix
    against the catalogue at ``root`` and store it as the imported space ``name``, metric
    ``"precomputed"`` (:mod:`songsim.spaces.imported`, "Distance matrices"). Its maps are stale
    from then on, as for vectors."""
    catalogue = load_catalogue(root)
    check_space_name(name, space_names())
    return import_distance_space(
        catalogue, space_dir(catalogue.derived_dir, name), name=name, distances=distances, description=description,
        source_label=source_label,
    )  # fmt: skip


def import_distance_bytes(root: str | Path, *, name: str, distances: tuple[str, bytes], description: str = "") -> ImportReport:
    """:func:`import_distances` for a matrix uploaded in the browser: a ``(file name,
    content)`` pair, handled as :func:`import_vector_bytes` handles vectors."""
    return _import_uploads(
        {"distances": distances},
        lambda paths: import_distances(root, name=name, distances=paths["distances"], description=description, source_label=distances[0]),
    )


def _import_uploads(uploads: dict[str, tuple[str, bytes] | None], run) -> ImportReport:
    """Write each uploaded ``(file name, content)`` to a temporary folder as ``<role><ext>``
    (only the extension of the user's name is used), ``run({role: path or None})``, and name
    the user's files, never the temporary copies, in an error."""
    with tempfile.TemporaryDirectory(prefix="songsim-import-") as folder:
        paths: dict[str, Path | None] = {}
        for role, upload in uploads.items():
            if upload is None:
                paths[role] = None
                continue
            path = Path(folder) / f"{role}{Path(upload[0]).suffix.lower()}"
            path.write_bytes(upload[1])
            paths[role] = path
        try:
            return run(paths)
        except ImportedSpaceError as exc:  # name the files the user uploaded, not the temporary copies
            message = str(exc)
            for role, path in paths.items():
                if path is not None:
                    message = message.replace(str(path.resolve()), uploads[role][0]).replace(str(path), uploads[role][0])
            raise ImportedSpaceError(message) from None

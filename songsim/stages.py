"""The state of every build stage of a catalogue: what :func:`songsim.build.build` would
reuse, redo or skip, computed from the stored files without building anything.

Stages, in the order a build runs them:

``catalogue``
    ``tracks.csv`` and its audio files: *done* when it loads (the detail gives the number of
    tracks), *missing* when there is no ``tracks.csv``, *error* when a row is bad (the detail
    is :func:`songsim.catalogue.load_catalogue`'s message). The other stages are listed
    only when this one is done.
``features:<kind>``
    The per-track feature cache (:mod:`songsim.features`) of every kind a registered space
    consumes, for the current feature settings: *done* (every track), *partial* (``N of M``
    tracks, e.g. after audio was added or edited) or *missing* (none).
``space:<name>``
    A fitted space: *done* when its stored fit key equals the key a build would compute now,
    *stale* when it is stored but its inputs changed (audio added or edited, a space it
    builds on out of date, a new algorithm version, an optional input that became available
    or went away), *missing* when never built, *needs labels* when the catalogue lacks the
    labels it (or a space it needs) needs. Which optional inputs a space uses is
    :func:`songsim.spaces.store.used_inputs`, the rule ``build`` follows; the detail of a
    space with optional inputs names the inputs it uses.
``map:<space>:<method>``
    A 2-D map of a stored space: *done* when fitted on the space's current fit, *stale* when
    the space was refitted since or is itself stale, *missing* when not stored.

This is the one truth about states: the Catalogue page shows :func:`stage_states`, the Models
page :func:`space_states` (the space rows of the same computation, with dim and fit time), and
``python -m songsim spaces DIR`` :func:`describe_spaces`.

Nothing here decodes audio; the only file it reads in full is an audio file whose size or
modification time changed since it was last hashed (:meth:`Catalogue.audio_fingerprints`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from songsim.build import DEFAULT_MAP_METHODS, DEFAULT_SPACES
from songsim.catalogue import TRACKS_CSV, Catalogue, load_catalogue
from songsim.errors import SongsimError
from songsim.features import FEATURE_KINDS, feature_cache_dir
from songsim.files import read_json
from songsim.spaces.base import Space, describe_space, input_space_names, space_dependencies, space_names, space_type
from songsim.spaces.imported import coverage_text, imported_space_names
from songsim.spaces.store import (
    build_order,
    current_fit_key,
    load_built_space,
    features_cache_dir,
    map_is_current,
    map_path,
    map_trust_problem,
    missing_labels,
    space_dir,
    space_trust_problem,
    stored_fit_key,
    space_info,
    stored_meta,
    used_inputs,
)

__all__ = [
    "DONE",
    "ERROR",
    "MISSING",
    "NEEDS_LABELS",
    "PARTIAL",
    "STALE",
    "STATES",
    "StageState",
    "build_plan",
    "buildable_spaces",
    "describe_spaces",
    "space_states",
    "stage_states",
    "state_counts",
]

DONE, PARTIAL, STALE, MISSING, NEEDS_LABELS, ERROR = "done", "partial", "stale", "missing", "needs labels", "error"
#: every state a stage can be in
STATES = (DONE, PARTIAL, STALE, MISSING, NEEDS_LABELS, ERROR)

_EPOCHS_TAG = re.compile(r"-epochs\d+$")


@dataclass(frozen=True)
class StageState:
    """One stage of a catalogue's build.

    Attributes
    ----------
    stage : str
        ``"catalogue"``, ``"features:<kind>"``, ``"space:<name>"`` or ``"map:<space>:<method>"``.
    state : str
        One of :data:`STATES`.
    detail : str
        Why, in words (counts, what changed, what is lacking).
    """

    stage: str
    state: str
    detail: str

    @property
    def kind(self) -> str:
        """``"catalogue"``, ``"features"``, ``"space"`` or ``"map"``."""
        return self.stage.split(":", 1)[0]

    @property
    def name(self) -> str:
        """What the stage is about: the feature kind, space name or ``"<space>:<method>"``."""
        return self.stage.split(":", 1)[1] if ":" in self.stage else self.stage

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _key_matches(space_cls: type[Space], stored: str, expected: str) -> bool:
    if stored == expected:
        return True
    return space_cls.trainable and _EPOCHS_TAG.sub("", stored) == expected


def _stored_files(folder: Path) -> set[str]:
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()


def _feature_stages(catalogue: Catalogue, fingerprints: Sequence[str], names: Sequence[str]) -> list[StageState]:
    consumers: dict[str, list[str]] = {}
    for name in names:
        for kind in used_inputs(space_type(name), catalogue):
            if kind in FEATURE_KINDS:
                consumers.setdefault(kind, []).append(name)
    rows = []
    for kind in FEATURE_KINDS:
        if kind not in consumers:
            continue
        stored = _stored_files(feature_cache_dir(features_cache_dir(catalogue), kind))
        wanted = set(fingerprints)  # identical audio files share one cache entry
        have = sum(f"{fp}.npy" in stored for fp in wanted)
        n_cached = sum(f"{fp}.npy" in stored for fp in fingerprints)
        used_by = f"used by {', '.join(consumers[kind])}"
        if not any(stored_fit_key(space_dir(catalogue.derived_dir, n)) for n in consumers[kind]):
            used_by += " (none built yet)"
        if have == len(wanted):
            rows.append(StageState(f"features:{kind}", DONE, f"all {len(fingerprints)} tracks cached; {used_by}"))
        elif have == 0:
            rows.append(StageState(f"features:{kind}", MISSING, f"0 of {len(fingerprints)} tracks cached; {used_by}"))
        else:
            rows.append(StageState(f"features:{kind}", PARTIAL, f"{n_cached} of {len(fingerprints)} tracks cached; {used_by}"))
    return rows


def _space_stage(
    cls: type[Space], catalogue: Catalogue, catalogue_key: str, state_of: dict[str, str], *, seed: int
) -> StageState:
    stage = f"space:{cls.name}"
    meta = stored_meta(space_dir(catalogue.derived_dir, cls.name))
    stored = meta.get("fit_key")
    lacking = missing_labels(cls, catalogue)
    blocked = [d for d in space_dependencies(cls) if state_of.get(d) == NEEDS_LABELS]
    if lacking:
        return StageState(stage, NEEDS_LABELS, f"the catalogue has no {', '.join(lacking)} labels")
    if blocked:
        return StageState(stage, NEEDS_LABELS, f"it builds on the {', '.join(blocked)} space, which lacks labels")
    used = used_inputs(cls, catalogue)
    if stored is None:
        return StageState(stage, MISSING, f"not built: {cls.description}")
    untrusted = space_trust_problem(space_dir(catalogue.derived_dir, cls.name))
    if untrusted is not None:  # never unpickled (songsim.signed): refitted by the next build
        return StageState(stage, STALE, f"its stored fit file {untrusted}: a build refits it")
    out_of_date = [d for d in input_space_names(used) if state_of.get(d) != DONE]
    if out_of_date:
        return StageState(stage, STALE, f"it builds on the {', '.join(out_of_date)} space, which will be (re)built first")
    if not _key_matches(cls, stored, current_fit_key(cls, catalogue, catalogue_key, seed=seed, used=used)):
        n_fitted = meta.get("n_tracks")
        fitted_on = tuple(meta.get("inputs") or ())
        if cls.optional_inputs and fitted_on and fitted_on != used:
            gained, lost = [i for i in used if i not in fitted_on], [i for i in fitted_on if i not in used]
            changed = "; ".join(
                [*(["it can now use " + inputs_text(gained)] if gained else []), *([inputs_text(lost) + " no longer available"] if lost else [])]
            )
        elif catalogue_key not in stored:
            changed = (
                f"fitted on {n_fitted} tracks, the catalogue now has {len(catalogue)}"
                if n_fitted is not None and n_fitted != len(catalogue)
                else "tracks or audio changed since it was fitted"
            )
        elif input_space_names(used):
            changed = f"the {', '.join(input_space_names(used))} space was refitted since"
        else:
            changed = "its algorithm version, seed or feature settings changed"
        return StageState(stage, STALE, changed)
    epochs = _EPOCHS_TAG.search(stored)
    detail = f"{meta.get('dim')}-d on {meta.get('n_tracks')} tracks, fitted {meta.get('fitted_at', '?')} in {meta.get('fit_seconds') or 0:.1f} s"
    if epochs:
        detail += f" (trained with an override of {epochs.group(0).removeprefix('-epochs')} epochs)"
    if cls.optional_inputs:
        detail += f"; inputs: {inputs_text(used)}"
    return StageState(stage, DONE, detail)


def inputs_text(inputs: Sequence[str]) -> str:
    """Input names in words, spaces by their name: ``"genre-cnn + handcrafted + musicnn"``."""
    return " + ".join(name.removeprefix("space:") for name in inputs)


def _imported_stage(catalogue: Catalogue, name: str) -> StageState:
    """An imported space is *done* once stored (it is never fitted); the detail says which
    file it came from and which tracks it lacks, *error* when its files no longer load."""
    stage = f"space:{name}"
    try:
        space = load_built_space(catalogue, name)
    except SongsimError as exc:
        return StageState(stage, ERROR, str(exc))
    source = stored_meta(space_dir(catalogue.derived_dir, name)).get("source", "?")
    shape = "a distance matrix" if space.kind == "distances" else f"{space.dim}-d"
    return StageState(stage, DONE, f"imported from {source}: {shape}, {coverage_text(catalogue, space)}")


def _map_stages(catalogue: Catalogue, name: str, space_state: str, map_methods: Sequence[str], *, seed: int) -> list[StageState]:
    maps_dir = map_path(catalogue, name, "x").parent
    extra = sorted(p.removesuffix(".json") for p in _stored_files(maps_dir) if p.endswith(".json") and not p.startswith("."))
    rows = []
    for method in [*map_methods, *(m for m in extra if m not in map_methods)]:
        stage = f"map:{name}:{method}"
        path = map_path(catalogue, name, method)
        if not (path.is_file() and path.with_suffix(".json").is_file()):
            rows.append(StageState(stage, MISSING, f"no {method} map stored"))
        elif space_state != DONE:
            rows.append(StageState(stage, STALE, f"the {name} space is {space_state}: the map is refitted after it"))
        elif (untrusted := map_trust_problem(catalogue, name, method)) is not None:
            rows.append(StageState(stage, STALE, f"the stored map {untrusted}: a build refits it"))
        elif not map_is_current(catalogue, name, method, seed=seed):
            rows.append(StageState(stage, STALE, f"fitted on an earlier fit of {name} (or another seed)"))
        else:
            meta = read_json(path.with_suffix(".json")) or {}
            trust = meta.get("trustworthiness")
            rows.append(StageState(stage, DONE, "current" + (f"; trustworthiness {trust:.3f}" if trust is not None else "")))
    return rows


def stage_states(
    root: str | Path,
    *,
    spaces: Sequence[str] | None = None,
    map_methods: Sequence[str] = DEFAULT_MAP_METHODS,
    seed: int = 0,
) -> list[StageState]:
    """The state of every build stage of the catalogue at ``root`` (see the module docstring).

    Parameters
    ----------
    root : str or Path
        The catalogue folder.
    spaces : sequence of str, optional
        The spaces to report (with the spaces they build on); default every registered one.
    map_methods : sequence of str
        Map methods expected for every stored space (maps stored with other methods, such as
        ``ae2d``, are reported too).
    seed : int
        The seed a build would use.

    Returns
    -------
    list of StageState
        ``catalogue`` first; then features, spaces in build order, and the maps of every
        stored space. Only the ``catalogue`` row when it is not *done*.
    """
    root = Path(root).expanduser().resolve()
    if not (root / TRACKS_CSV).is_file():
        return [StageState("catalogue", MISSING, f"no {TRACKS_CSV} in {root}: import a folder, or make one with track_id,path columns")]
    try:
        catalogue = load_catalogue(root)
        fingerprints = catalogue.audio_fingerprints()
    except SongsimError as exc:
        return [StageState("catalogue", ERROR, str(exc))]
    except OSError as exc:  # an audio file vanished or turned unreadable after the check
        return [StageState("catalogue", ERROR, f"cannot read {exc.filename}: {exc.strerror}; fix or remove its row in {root / TRACKS_CSV}")]
    catalogue_key = catalogue.fingerprint(fingerprints)
    labelled = [c for c in catalogue.tracks.columns if c not in ("track_id", "path") and catalogue.has_labels(c)]
    rows = [StageState("catalogue", DONE, f"{len(catalogue)} tracks; labels: {', '.join(labelled) or 'none'}")]

    imported = imported_space_names(catalogue.derived_dir)
    wanted = list(spaces) if spaces is not None else [*space_names(), *imported]
    names = build_order(catalogue, [n for n in wanted if n not in imported], building=())
    rows += _feature_stages(catalogue, fingerprints, names)
    state_of: dict[str, str] = {}
    for name in names:
        row = _space_stage(space_type(name), catalogue, catalogue_key, state_of, seed=seed)
        state_of[name] = row.state
        rows.append(row)
    for name in (n for n in wanted if n in imported):
        row = _imported_stage(catalogue, name)
        state_of[name] = row.state
        rows.append(row)
        names.append(name)
    for name in names:
        if state_of[name] in (DONE, STALE):
            rows += _map_stages(catalogue, name, state_of[name], map_methods, seed=seed)
    return rows


def build_plan(states: Sequence[StageState], *, default_spaces: Sequence[str] = DEFAULT_SPACES) -> list[str]:
    """The spaces to pass to :func:`songsim.build.build` so that it redoes every stale or
    missing stage of what is already built, and builds the missing ``default_spaces``.

    Spaces never built (other than ``default_spaces``) and spaces that need labels are left
    out: building them is a choice (the learned ones train for minutes). Empty when
    everything is done, or when the catalogue itself is not (nothing can be built then).
    """
    if not states or states[0].stage != "catalogue" or states[0].state != DONE:
        return []
    space_state = {s.name: s.state for s in states if s.kind == "space"}
    plan = [name for name, state in space_state.items() if state == STALE]
    plan += [name for name in default_spaces if space_state.get(name) == MISSING]
    plan += [s.name.split(":", 1)[0] for s in states if s.kind == "map" and s.state != DONE]
    order = list(space_state)
    return sorted(set(plan), key=lambda n: order.index(n) if n in order else len(order))


def buildable_spaces(states: Sequence[StageState]) -> list[str]:
    """Spaces never built that a build could make now (they lack no labels), in build order."""
    return [s.name for s in states if s.kind == "space" and s.state == MISSING]


def state_counts(states: Sequence[StageState]) -> dict[str, int]:
    """How many stages are in each state, in :data:`STATES` order (states with none left out)."""
    counts = {state: sum(s.state == state for s in states) for state in STATES}
    return {state: n for state, n in counts.items() if n}


def space_states(root: str | Path, *, seed: int = 0) -> list[dict]:
    """One row per registered space (then per imported space) for the Models page, in build order: its build state
    (:func:`stage_states`: *done*, *stale*, *missing*, *needs labels*) and why, its dim, fit
    seconds and fitting time when stored, what it is, and where it comes from (``origin``;
    ``package``: "NAME VERSION" of a plug-in's package), and ``used_inputs``: the inputs its
    stored fit used (required, then the optional ones the catalogue had) — for a space not
    built, those a build would use now (:func:`songsim.spaces.store.used_inputs`); ``[]`` for
    an imported space. Empty when the catalogue itself is not *done* (its
    :func:`stage_states` row says why)."""
    states = stage_states(root, seed=seed, map_methods=())
    if states[0].state != DONE:
        return []
    catalogue = load_catalogue(root)
    rows = []
    for state in (s for s in states if s.kind == "space"):
        meta = stored_meta(space_dir(catalogue.derived_dir, state.name))
        info = space_info(catalogue, state.name)
        described = describe_space(info)
        if isinstance(info, type):
            inputs = list(meta.get("inputs") or used_inputs(info, catalogue)) if meta.get("fit_key") else list(used_inputs(info, catalogue))
        else:  # imported: nothing computed from the audio
            inputs = []
        rows.append({
            "space": state.name, "state": state.state, "detail": state.detail, "dim": meta.get("dim"),
            "used_inputs": inputs, "fit_seconds": meta.get("fit_seconds"), "fitted_at": meta.get("fitted_at"),
            "description": described["description"], "origin": described["origin"],
            "package": f"{described['package']} {described['package_version']}" if described["package"] else None,
        })
    return rows


def describe_spaces(root: str | Path | None = None) -> list[dict]:
    """Every registered space in registry order (:func:`songsim.spaces.base.describe_space`),
    plus — given a catalogue folder — its imported spaces (origin ``"imported"``), each
    space's ``state`` there, its ``dim`` when stored (``None`` otherwise) and its
    ``used_inputs`` there (:func:`space_states`); what ``python -m songsim spaces [DIR] --json``
    prints."""
    if not root:
        return [describe_space(space_type(name)) for name in space_names()]
    catalogue = load_catalogue(root)
    found = {row["space"]: row for row in space_states(root)}
    order = [*space_names(), *imported_space_names(catalogue.derived_dir)]
    return [
        {
            **describe_space(space_info(catalogue, name)), "state": found[name]["state"], "dim": found[name]["dim"],
            "used_inputs": found[name]["used_inputs"],
        }
        for name in order if name in found
    ]

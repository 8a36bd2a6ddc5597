"""K-fold models for ``evaluate --folds K``: every song scored by a model that never saw it.

A :attr:`~songsim.spaces.base.Space.held_out` space (one whose ``fit`` trains on part of the
catalogue and sets ``test_rows_``) is scored only on the rows it never trained on: the shared
10 % test split, 24 songs on the demo — a sample so small that genre P@5 moves by about ± 0.07
from one split to another. With K folds, K models of the space are trained, model ``i`` with
fold ``i`` of the catalogue held out as its test rows (:class:`~songsim.spaces.base.Fold` in
:class:`~songsim.spaces.base.TrainingOptions`; the folds are
:func:`songsim.spaces.learned.catalogue_split`'s, stratified by genre × emotion and
deterministic from the seed), and every song is a query of the model it was held out of
(:class:`FoldModels`, scored by :func:`songsim.evaluate.evaluate_space`).

A space fed by a held-out one (``"space:<name>"`` inputs, e.g. ``ae-2d`` on ``triplet``, or
``fusion-ae`` on ``genre-cnn`` and ``emotion-cnn``) *needs folds* too (:func:`needs_folds`):
its fold-``i`` model is fitted on the fold-``i`` vectors of the spaces it builds on (inputs
that hold nothing out are the built space's), so no model in the chain saw fold ``i``; one
that holds nothing out itself takes its inputs' test rows as its own.

Fold models are stored beside the space they belong to::

    spaces/<name>/folds/<K>-<i>/space.joblib, meta.json, training-state.pt (while it trains)

keyed by ``(the built space's fit key, K, i)`` (:func:`fold_fit_key`): a second ``evaluate
--folds K`` reuses them, and a refit of the space — or of a space it builds on, which changes
its fit key — makes them stale. They are trained with the built fit's own settings (its seed
and epochs override, read back from its fit key and checked against it: :func:`fit_settings`)
on the device of the ``training`` options given, so each is the same recipe on other rows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from songsim.catalogue import Catalogue
from songsim.errors import NotBuiltError, SongsimError
from songsim.spaces.base import (
    Fold,
    Space,
    TrainingOptions,
    checked_vectors,
    input_space_names,
    optional_dependencies,
    space_dependencies,
    space_names,
    space_type,
)
from songsim.spaces.store import (
    TRAINING_STATE_FILE,
    current_fit_key,
    load_built_space,
    load_current_space,
    save_space,
    space_dir,
    space_info,
    stored_fit_key,
    used_inputs,
)

__all__ = ["FoldModels", "check_fold_count", "fit_settings", "fold_dir", "fold_fit_key", "fold_models", "needs_folds"]

#: on_progress(stage, fraction_done 0–1, message), as in :mod:`songsim.build`
ProgressFn = Callable[[str, float, str], None]
#: the label the folds must each hold every value of (K may not exceed its smallest class)
FOLD_LABEL = "genre"


@dataclass(frozen=True)
class FoldModels:
    """K fitted models of one space, model ``i`` trained with fold ``i`` held out.

    Attributes
    ----------
    name : str
        The space's name.
    models : tuple of Space
        The K fold models, each with ``test_rows_`` (its fold); the folds partition the
        catalogue's rows, so every row is a test row of exactly one model.
    """

    name: str
    models: tuple[Space, ...]

    @property
    def metric(self) -> str:
        """The space's own similarity (:attr:`songsim.spaces.base.Space.metric`)."""
        return self.models[0].metric

    @property
    def count(self) -> int:
        """K."""
        return len(self.models)


def needs_folds(space_cls: type[Space] | Space) -> bool:
    """Whether ``evaluate --folds`` trains fold models of this space: it holds out test rows
    (:attr:`~songsim.spaces.base.Space.held_out`) or builds on a space that needs folds."""
    cls = space_cls if isinstance(space_cls, type) else type(space_cls)
    builds_on = [*space_dependencies(cls), *(d for d in optional_dependencies(cls) if d in space_names())]
    return bool(getattr(cls, "held_out", False)) or any(needs_folds(space_type(name)) for name in builds_on)


def check_fold_count(catalogue: Catalogue, k: Any) -> int:
    """``k`` as the number of folds, or a :class:`SongsimError` saying why it cannot be.

    K must be an integer ≥ 2 and at most the song count of the catalogue's smallest genre
    (every fold holds every genre), or of the catalogue when it has no genres.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise SongsimError(
            f"--folds must be an integer >= 2 (K models, each holding out 1/K of the songs); got {k!r}. "
            "Leave it out to score the held-out spaces on their 10 % test split."
        )
    k = int(k)
    if catalogue.has_labels(FOLD_LABEL):
        values = [v for v in catalogue.labels(FOLD_LABEL) if v is not None]
        names, counts = np.unique(np.asarray([str(v) for v in values], dtype=object), return_counts=True)
        smallest = int(np.argmin(counts))
        if k > counts[smallest]:
            raise SongsimError(
                f"--folds {k} is more than the {counts[smallest]} songs of the smallest genre ({names[smallest]!r}) in "
                f"{catalogue.root}: every fold must hold every genre. Use --folds {int(counts[smallest])} or fewer."
            )
    elif k > len(catalogue):
        raise SongsimError(f"--folds {k} is more than the {len(catalogue)} songs of {catalogue.root}: use --folds {len(catalogue)} or fewer.")
    return k


def fold_dir(catalogue: Catalogue, name: str, k: int, index: int) -> Path:
    """Folder of fold model ``index`` (0-based) of ``k`` of space ``name``."""
    return space_dir(catalogue.derived_dir, name) / "folds" / f"{k}-{index}"


def fold_fit_key(fit_key: str, k: int, index: int) -> str:
    """The key of a fold model: the built space's fit key, K and the fold (0-based)."""
    return f"{fit_key}-folds{k}-{index}"


def fit_settings(space_cls: type[Space], catalogue: Catalogue, catalogue_key: str) -> tuple[str, int, int | None]:
    """How the built fit of ``space_cls`` was made: ``(fit key, seed, max_epochs override or None)``.

    Read back from its stored fit key (:func:`songsim.spaces.store.space_fit_key` puts the seed
    after the name and version, :attr:`TrainingOptions.fit_tag` the epochs at the end) and
    checked by recomputing the key with those settings (:func:`current_fit_key`).

    Raises
    ------
    NotBuiltError
        The space is not built, or its fit is stale (its inputs or settings changed since).
    """
    name = space_cls.name
    key = stored_fit_key(space_dir(catalogue.derived_dir, name))
    rebuild = f"`python -m songsim {'train' if space_cls.trainable else 'build'} {catalogue.root} --spaces {name}`"
    if key is None:
        raise NotBuiltError(f"Space {name!r} is not built in {catalogue.root}: run {rebuild} first.")
    seed = re.match(rf"{re.escape(name)}-v{space_cls.version}-seed(-?\d+)-", key)
    epochs = re.search(r"-epochs(\d+)$", key)
    candidates = ([int(epochs.group(1))] if space_cls.trainable and epochs else []) + [None]
    for max_epochs in candidates if seed is not None else []:
        options = TrainingOptions(max_epochs=max_epochs)
        if current_fit_key(space_cls, catalogue, catalogue_key, seed=int(seed.group(1)), training=options) == key:
            return key, int(seed.group(1)), max_epochs
    raise NotBuiltError(
        f"Space {name!r} in {catalogue.root} is stale (its audio, settings or the spaces it builds on changed since it "
        f"was fitted): rebuild it with {rebuild} before evaluating it with --folds (each epochs override as before)."
    )


def fold_models(
    catalogue: Catalogue,
    names: Sequence[str],
    *,
    k: int,
    training: TrainingOptions | None = None,
    n_jobs: int | None = None,
    on_progress: ProgressFn | None = None,
) -> dict[str, FoldModels]:
    """The K fold models of every space in ``names`` that :func:`needs_folds`, stored ones reused.

    Parameters
    ----------
    catalogue : Catalogue
        A built catalogue.
    names : sequence of str
        Space names; those that need no folds are left out of the result.
    k : int
        Folds (:func:`check_fold_count`).
    training : TrainingOptions, optional
        ``device`` and ``on_epoch`` of every training; the epochs and seed are each built fit's own.
    n_jobs : int, optional
        Processes for features missing from the cache (none are, in a built catalogue).
    on_progress : callable, optional
        ``on_progress(stage, fraction_done, message)`` before and after each fold model.

    Returns
    -------
    dict
        ``{name: FoldModels}``.

    Raises
    ------
    NotBuiltError
        A space (or a space it builds on) is not built or is stale.
    SongsimError
        A bad ``k``; spaces of one chain built with different seeds (their folds differ).
    """
    k = check_fold_count(catalogue, k)
    report = on_progress or (lambda stage, fraction, message: None)
    options = training or TrainingOptions()
    wanted = [n for n in dict.fromkeys(names) if needs_folds(space_info(catalogue, n))]
    if not wanted:
        return {}
    fingerprints = catalogue.audio_fingerprints()
    catalogue_key = catalogue.fingerprint(fingerprints)
    labels = {c: catalogue.labels(c) for c in catalogue.tracks.columns}
    built: dict[str, Space] = {}
    folds: dict[str, list[Space]] = {}
    order = _fold_order(wanted, catalogue)
    total = len(order) * k

    def vectors_of(dependency: str, index: int) -> np.ndarray:
        if dependency in folds:
            return folds[dependency][index].vectors_
        if dependency not in built:
            built[dependency] = load_built_space(catalogue, dependency)
        return built[dependency].vectors_

    done = 0
    for name in order:
        cls = space_type(name)
        key, seed, max_epochs = fit_settings(cls, catalogue, catalogue_key)
        models: list[Space] = []
        for index in range(k):
            stage = f"folds:{name}"
            folder = fold_dir(catalogue, name, k, index)
            fold_key = fold_fit_key(key, k, index)
            stored = load_current_space(folder, fold_key)
            if stored is not None:
                models.append(stored)
                done += 1
                report(stage, done / total, f"{name} fold {index + 1}/{k}: stored model reused")
                continue
            report(stage, done / total, f"{name} fold {index + 1}/{k}: training on the other {k - 1} folds")
            started = time.perf_counter()
            inputs = _inputs(cls, catalogue, fingerprints, lambda d, i=index: vectors_of(d, i), n_jobs)
            fold_options = replace(
                options, max_epochs=max_epochs, catalogue_fingerprint=catalogue_key, fold=Fold(index, k) if cls.held_out else None,
                resume_path=str(folder / TRAINING_STATE_FILE), resume_key=fold_key,
            )  # fmt: skip
            folder.mkdir(parents=True, exist_ok=True)
            space = cls().fit(inputs, labels=labels, seed=seed, **({"training": fold_options} if cls.trainable else {}))
            space.vectors_ = checked_vectors(space, getattr(space, "vectors_", None), n_songs=len(catalogue), method="fit")
            if getattr(space, "used_inputs_", None) is None:  # as build records it
                space.used_inputs_ = used_inputs(cls, catalogue)
            _check_test_rows(space, [folds[d][index] for d in _builds_on(cls, catalogue) if d in folds], index=index, k=k)
            save_space(space, folder, fit_key=fold_key, fit_seconds=time.perf_counter() - started)
            (folder / TRAINING_STATE_FILE).unlink(missing_ok=True)
            models.append(space)
            done += 1
            report(stage, done / total, f"{name} fold {index + 1}/{k}: trained in {time.perf_counter() - started:.0f} s")
        folds[name] = models
    return {name: FoldModels(name=name, models=tuple(folds[name])) for name in wanted}


def _builds_on(cls: type[Space], catalogue: Catalogue) -> list[str]:
    """The spaces the built fit of ``cls`` used: its required and used optional inputs
    (:func:`songsim.spaces.store.used_inputs`, as for the built fit, whose key is current)."""
    return input_space_names(used_inputs(cls, catalogue))


def _fold_order(names: Sequence[str], catalogue: Catalogue) -> list[str]:
    """``names`` and every space they build on that needs folds, each after those it builds on."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for dependency in _builds_on(space_type(name), catalogue):
            if needs_folds(space_type(dependency)):
                visit(dependency)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def _inputs(
    cls: type[Space], catalogue: Catalogue, fingerprints: Sequence[str], dependency_vectors: Callable[[str], np.ndarray], n_jobs: int | None
) -> dict[str, Any]:
    """The inputs of ``cls`` for every catalogue track, as :func:`songsim.build.build` computes them."""
    from songsim.spaces.inputs import space_inputs

    return space_inputs(
        cls, catalogue, paths=catalogue.tracks["path"].map(Path).tolist(), fingerprints=fingerprints,
        keys=catalogue.track_ids, dependency_vectors=dependency_vectors, n_jobs=n_jobs, names=used_inputs(cls, catalogue),
    )  # fmt: skip


def _check_test_rows(space: Space, upstream: Sequence[Space], *, index: int, k: int) -> None:
    """Give a space that holds nothing out its inputs' fold as ``test_rows_``; refuse a fold
    model whose test rows differ from those of the fold models it was fitted on (spaces of
    one chain built with different seeds would otherwise leak)."""
    if not getattr(type(space), "held_out", False):
        if not upstream:  # it uses no held-out input here: refuse rather than score it on rows it saw
            raise SongsimError(
                f"Fold {index + 1}/{k} of {space.name!r}: it holds nothing out and uses no held-out space in this catalogue, "
                "so it needs no folds; evaluate it without --folds."
            )
        space.test_rows_ = np.asarray(upstream[0].test_rows_, dtype=np.int64)
    for other in upstream:
        if not np.array_equal(np.sort(space.test_rows_), np.sort(other.test_rows_)):
            raise SongsimError(
                f"Fold {index + 1}/{k} of {space.name!r} holds out other songs than that of {other.name!r}, which it builds on: "
                f"the two were built with different seeds. Rebuild both with one `--seed` and evaluate again."
            )

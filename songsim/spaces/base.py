"""The ``Space`` contract and the registry of space types.

A *space* turns every catalogue song into a vector and can embed a new song through the same
fitted objects (never a refit). Each space declares the *inputs* it consumes, by name; its
``fit`` and ``transform`` receive a dict from those names to values for m songs. The input
names are registered in :mod:`songsim.spaces.inputs`, which computes them for catalogue songs
and uploads alike:

- ``"handcrafted"``: (m, D) float32, :func:`songsim.features.handcrafted_features`;
- ``"mel"``: m log-mel spectrograms, each (N_MELS, n_frames) float32 (memory-mapped);
- ``"chroma"``: m chromagrams, each (12, n_frames) float32 (memory-mapped);
- ``"metadata"``: (m, 11) float, the Spotify-style features (NaN where unknown; uploads are
  measured by :mod:`songsim.measure`);
- ``"key"``: m strings (track ids, or uploads' content fingerprints) — for controls that
  ignore the audio;
- ``"space:<name>"``: (m, dim) float32, the songs' vectors in another space (built first).

Beside the required ``inputs``, a space may list ``optional_inputs``: inputs it uses where the
catalogue has them (a ``"space:<name>"`` whose space can be built there — its labels exist —
or any other registered input), and does without elsewhere. Which ones a fit used is decided
by one rule, :func:`songsim.spaces.store.used_inputs`, that ``build``, the stage states,
``songsim spaces DIR`` and the Models page share; the fitted space records them in
``used_inputs_`` (the order of its blocks), its ``fit`` and ``transform`` receive exactly those,
and they are part of its fit key, so a catalogue that gains an input refits the space. A space
marked :attr:`Space.built_on_request` (``musicnn``: slow) is used as an optional input only
where it is already built or built by the same build — never built just for that.

A space class says what it is through class attributes — ``name``, ``description``,
``inputs``, ``required_labels``, ``metric`` (its own similarity), ``family`` (where it comes
from), ``trainable`` (its ``fit`` takes :class:`TrainingOptions`), ``held_out`` (it trains on
part of the catalogue and sets ``test_rows_``) and ``embeds_uploads`` —
so nothing outside the class keeps a list of which spaces are which.

The registry holds every space type by name, in registration order. It is complete whatever
a caller imports: :mod:`songsim.spaces` (the package) imports every built-in family module,
then registers the plug-in spaces of installed packages (:mod:`songsim.spaces.plugins`), each
with the :class:`PluginSource` it comes from. What a space's ``fit`` and ``transform`` return
is checked in one place, :func:`checked_vectors`, for built-in and plug-in spaces alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from songsim.errors import NotBuiltError, SpaceOutputError, UnknownSpaceError

#: ``Space.family`` of the spaces songsim ships, in the order they are listed
BUILT_IN_FAMILIES = ("baseline", "learned", "literature", "pretrained")

#: prefix of the inputs that are another space's vectors (``"space:triplet"``)
SPACE_INPUT_PREFIX = "space:"

#: on_epoch(space_name, epoch 1-based, max_epochs, train_loss, val_loss or None)
SpaceEpochFn = Callable[[str, int, int, float, "float | None"], None]


@dataclass(frozen=True)
class Fold:
    """One model of a K-fold evaluation (``evaluate --folds K``, :mod:`songsim.folds`): train
    with fold ``index`` of the catalogue's ``count`` stratified folds held out as the test
    rows (:func:`songsim.spaces.learned.catalogue_split`).

    Attributes
    ----------
    index : int
        0-based, ``0 <= index < count``.
    count : int
        K >= 2.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 2:
            raise ValueError(f"Fold count must be an integer >= 2; got {self.count!r}")
        if isinstance(self.index, bool) or not isinstance(self.index, int) or not 0 <= self.index < self.count:
            raise ValueError(f"Fold index must be an integer in 0..{self.count - 1}; got {self.index!r}")


@dataclass(frozen=True)
class TrainingOptions:
    """How to train, as opposed to what: passed by ``build``/``train`` to trainable spaces.

    Attributes
    ----------
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"mps"``; default :func:`songsim.train.choose_device`.
    max_epochs : int, optional
        Overrides every model's ``max_epochs`` (a changed value retrains: see :attr:`fit_tag`).
    on_epoch : callable, optional
        ``on_epoch(space_name, epoch, max_epochs, train_loss, val_loss)`` after every epoch.
    catalogue_fingerprint : str
        Stored in the checkpoints (set by ``build``).
    resume_path, resume_key : str
        Where training keeps its state after every epoch and the fit it belongs to (set by
        ``build``: the space's folder and fit key), so a killed build resumes a training from
        its last finished epoch (:class:`songsim.train.ResumeFile`); ``None``: no resume file.
    fold : Fold, optional
        For a :attr:`Space.held_out` space: hold out this fold of the catalogue instead of the
        shared 10 % test split (set by :mod:`songsim.folds`, which stores fold models apart,
        keyed by the space's fit key, K and the fold; so the fold is not part of :attr:`fit_tag`).
        Spaces that hold nothing out ignore it.
    """

    device: str | None = None
    max_epochs: int | None = None
    on_epoch: SpaceEpochFn | None = None
    catalogue_fingerprint: str = ""
    resume_path: str | None = None
    resume_key: str = ""
    fold: Fold | None = None

    @property
    def fit_tag(self) -> str:
        """Suffix of the stored fit's key: ``""``, or ``"-epochs<N>"`` when overridden."""
        return "" if self.max_epochs is None else f"-epochs{self.max_epochs}"


class Space(ABC):
    """An embedding space, scikit-learn style: nothing in ``__init__`` but settings,
    fitted attributes end in ``_``, :meth:`fit` returns ``self``.

    Attributes
    ----------
    vectors_ : np.ndarray [shape=(n_tracks, dim), float32]
        The catalogue's embedding, rows in ``tracks.csv`` order (set by :meth:`fit`).
    covered_ : np.ndarray [shape=(n_tracks,), bool], optional
        Only for a space with no vector for some tracks (an imported file that lacks them):
        which rows have one. Those rows are never searched, mapped or scored
        (:func:`covered_rows`).
    used_inputs_ : tuple of str, optional
        The inputs the fit used: its required :attr:`inputs`, then those of its
        :attr:`optional_inputs` the catalogue had (set by ``build``; :func:`fitted_inputs`).
        ``transform`` receives these, for an upload too.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    #: names of the inputs ``fit`` and ``transform`` receive (see the module docstring)
    inputs: ClassVar[tuple[str, ...]]
    #: inputs used where the catalogue has them (module docstring), after ``inputs`` in this
    #: order; a space with optional inputs keeps at least one required input
    optional_inputs: ClassVar[tuple[str, ...]] = ()
    #: whether the space is built only when asked for: another space lists it among its
    #: ``optional_inputs`` but uses it only where it is built, or built in the same build
    built_on_request: ClassVar[bool] = False
    #: catalogue label columns the space needs (it is skipped when they are missing)
    required_labels: ClassVar[tuple[str, ...]] = ()
    #: bump when the space's algorithm changes, so stored fits become stale
    version: ClassVar[int] = 1
    #: the similarity its vectors are made for, the default wherever neighbours are searched:
    #: "cosine" (direction) or "euclidean" (−distance, for vectors whose length means something);
    #: "precomputed" (:data:`songsim.neighbours.PRECOMPUTED`) for a space that gives distances:
    #: ``vectors_`` is then the (n_tracks, n_tracks) distance matrix (row i = from track i,
    #: smaller = closer) and ``transform`` gives each new song's (n_tracks,) distances
    metric: ClassVar[str] = "cosine"
    #: where the space comes from: one of :data:`BUILT_IN_FAMILIES` for songsim's own
    family: ClassVar[str] = "baseline"
    #: whether ``fit`` trains a model and so takes ``training=TrainingOptions(...)`` (epochs,
    #: device, progress, resume file), and an epochs override is part of its fit key
    trainable: ClassVar[bool] = False
    #: whether :meth:`transform` can embed a song that is not in the catalogue (an upload)
    embeds_uploads: ClassVar[bool] = True
    #: whether ``fit`` trains on part of the catalogue and sets ``test_rows_``, the rows it never
    #: trained on (the only queries ``evaluate`` scores it on); such a space is :attr:`trainable`
    #: and holds out ``TrainingOptions.fold`` when given (``evaluate --folds K``)
    held_out: ClassVar[bool] = False

    vectors_: np.ndarray

    @abstractmethod
    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "Space":
        """Fit on the catalogue's ``inputs`` (row order of ``tracks.csv``) and set ``vectors_``.

        ``labels`` maps every column of ``tracks.csv`` to an (n_tracks,) object array. A
        :attr:`trainable` space takes one more keyword, ``training`` (:class:`TrainingOptions`).
        """

    @abstractmethod
    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """Embed new songs: ``inputs`` for m songs → (m, dim) float32, through the fitted objects."""

    @property
    def dim(self) -> int:
        """Embedding size."""
        return int(self._fitted().shape[1])

    def _fitted(self) -> np.ndarray:
        vectors = getattr(self, "vectors_", None)
        if vectors is None:
            raise NotBuiltError(f"Space {self.name!r} is not fitted yet: run `python -m songsim build DIR`.")
        return vectors


def covered_rows(space: Space) -> np.ndarray:
    """(n_tracks,) bool: the rows of ``space`` that have a vector (every row unless the space
    sets ``covered_``)."""
    covered = getattr(space, "covered_", None)
    return np.ones(len(space.vectors_), dtype=bool) if covered is None else np.asarray(covered, dtype=bool)


@dataclass(frozen=True)
class PluginSource:
    """Where a plug-in space comes from (:mod:`songsim.spaces.plugins`).

    Attributes
    ----------
    package, package_version : str
        The installed distribution that declares it, e.g. ``"songsim-toy-space"``, ``"0.1.0"``.
    entry_point : str
        Its line in the ``songsim.spaces`` group: ``"toy-mel-mean = songsim_toy_space:MelMeanSpace"``.
    """

    package: str
    package_version: str
    entry_point: str

    def __str__(self) -> str:
        return f"plug-in from package {self.package} {self.package_version}"


_SPACE_TYPES: dict[str, type[Space]] = {}
#: space name -> where it comes from, for the plug-in spaces
_PLUGIN_SOURCES: dict[str, PluginSource] = {}
#: entry-point (and, when known, space) name -> why that installed plug-in is not registered
_UNLOADED_PLUGINS: dict[str, str] = {}


def register_space(cls: type[Space], *, plugin: PluginSource | None = None) -> type[Space]:
    """Class decorator adding a space type to the registry under ``cls.name``; ``plugin``:
    the package it comes from, for a plug-in space (:mod:`songsim.spaces.plugins`)."""
    _SPACE_TYPES[cls.name] = cls
    _PLUGIN_SOURCES.pop(cls.name, None)
    if plugin is not None:
        _PLUGIN_SOURCES[cls.name] = plugin
    return cls


def unregister_space(name: str) -> None:
    """Remove space type ``name`` from the registry (nothing happens if it is not there)."""
    _SPACE_TYPES.pop(name, None)
    _PLUGIN_SOURCES.pop(name, None)


def plugin_source(name: str) -> PluginSource | None:
    """The package plug-in space ``name`` comes from; ``None`` for songsim's own spaces."""
    return _PLUGIN_SOURCES.get(name)


def mark_plugin_unloaded(names: Sequence[str], reason: str) -> None:
    """Remember that the plug-in known by ``names`` (its entry point's, its space's) was not
    registered and why, so that :func:`space_type` says so instead of "unknown space"."""
    for name in names:
        _UNLOADED_PLUGINS[name] = reason


def space_names(*, family: str | None = None) -> list[str]:
    """Names of every registered space (only those of ``family`` when given), in
    registration order."""
    return [name for name, cls in _SPACE_TYPES.items() if family is None or cls.family == family]


def space_type(name: str) -> type[Space]:
    """The registered class for ``name``; :class:`UnknownSpaceError` names the valid ones."""
    try:
        return _SPACE_TYPES[name]
    except KeyError:
        if name in _UNLOADED_PLUGINS:
            raise UnknownSpaceError(f"Space {name!r} is an installed plug-in that songsim could not load: {_UNLOADED_PLUGINS[name]}") from None
        raise UnknownSpaceError(f"Unknown space {name!r}: choose one of {', '.join(_SPACE_TYPES)}.") from None


def describe_space(space_cls: type[Space]) -> dict[str, Any]:
    """What a registered space is, as plain JSON types: name, description, inputs (required),
    optional inputs (used where the catalogue has them), required labels, metric, whether it is trainable and can embed uploads, its family and origin
    (``"built-in"`` for songsim's own families, ``"plug-in"`` for an installed package's, whose
    ``package``, ``package_version`` and ``entry_point`` are given; ``None`` for the others)."""
    plugin = plugin_source(space_cls.name)
    return {
        "name": space_cls.name,
        "description": space_cls.description,
        "inputs": list(space_cls.inputs),
        "optional_inputs": list(getattr(space_cls, "optional_inputs", ())),
        "required_labels": list(space_cls.required_labels),
        "metric": space_cls.metric,
        "trainable": bool(space_cls.trainable),
        "embeds_uploads": bool(space_cls.embeds_uploads),
        "family": space_cls.family,
        "origin": "plug-in" if plugin else "built-in" if space_cls.family in BUILT_IN_FAMILIES else space_cls.family,
        "package": plugin.package if plugin else None,
        "package_version": plugin.package_version if plugin else None,
        "entry_point": plugin.entry_point if plugin else None,
        "version": int(space_cls.version),
    }


def checked_vectors(space: Space | type[Space], vectors: Any, *, n_songs: int, dim: int | None = None, method: str) -> np.ndarray:
    """What a space's ``method`` (``"fit"`` or ``"transform"``) returned, checked: every build
    and every upload pass through here, so no space, built-in or plug-in, hands a search, a map
    or a study vectors it cannot use.

    Parameters
    ----------
    space : Space or its class
        The space (named in the error, with the package of a plug-in).
    vectors : array-like [shape=(n_songs, dim)]
        ``vectors_`` after ``fit``, or what ``transform`` returned; any real floating dtype.
    n_songs : int
        Rows expected: the catalogue's tracks after ``fit``, the songs embedded by ``transform``.
    dim : int, optional
        Columns expected (the fitted dimension, for ``transform``); any ``dim >= 1`` when ``None``.

    Returns
    -------
    np.ndarray [shape=(n_songs, dim), float32]

    Raises
    ------
    SpaceOutputError
        Not an array, another shape, a non-float dtype, or NaN/inf values; the message names
        the space, its package and the fix.
    """
    produced = "its vectors_ after fit()" if method == "fit" else "transform()"
    expected = f"({n_songs}, {'dim' if dim is None else dim})"
    array = None if vectors is None else np.asarray(vectors)
    if array is None or array.dtype == object:
        problem = f"{produced} is {type(vectors).__name__}, not a numeric array"
    elif array.ndim != 2 or array.shape[0] != n_songs or array.shape[1] < 1 or dim is not None and array.shape[1] != dim:
        problem = f"{produced} has shape {array.shape}, expected {expected}"
    elif not np.issubdtype(array.dtype, np.floating):
        problem = f"{produced} has dtype {array.dtype}, expected a float dtype (float32)"
    elif not np.isfinite(array).all():
        problem = f"{produced} holds {int((~np.isfinite(array)).sum())} NaN or infinite values"
    else:
        return array.astype(np.float32, copy=False)
    plugin = plugin_source(space.name)
    if plugin is None:
        fix = "this is a bug in songsim's own space: please report it"
    else:
        class_name = (space if isinstance(space, type) else type(space)).__name__
        fix = (
            f"fix {class_name}.{method} in package {plugin.package}, reinstall it and build the space again "
            f"(`python -m songsim build DIR --spaces {space.name}`)"
        )
    raise SpaceOutputError(
        f"Space {space.name!r}{f' ({plugin})' if plugin else ''}: {problem}. A space gives one finite float row per "
        f"song, in one dim for catalogue songs and uploads alike; {fix}."
    )


def input_space_names(inputs: Sequence[str]) -> list[str]:
    """The spaces named by the ``"space:<name>"`` entries of ``inputs``, in order."""
    return [name.removeprefix(SPACE_INPUT_PREFIX) for name in inputs if name.startswith(SPACE_INPUT_PREFIX)]


def space_dependencies(space_cls: type[Space]) -> list[str]:
    """Names of the spaces whose vectors ``space_cls`` needs (its required ``"space:<name>"``
    inputs; the optional ones are :func:`optional_dependencies`)."""
    return input_space_names(space_cls.inputs)


def optional_dependencies(space_cls: type[Space]) -> list[str]:
    """Names of the spaces whose vectors ``space_cls`` uses where they can be built (its
    optional ``"space:<name>"`` inputs)."""
    return input_space_names(getattr(space_cls, "optional_inputs", ()))


def fitted_inputs(space: Space) -> tuple[str, ...]:
    """The inputs a fitted space consumes: ``used_inputs_`` when its fit recorded them, else its
    class's required ``inputs`` (a fit stored before optional inputs existed)."""
    used = getattr(space, "used_inputs_", None)
    return tuple(type(space).inputs if used is None else used)


def in_build_order(
    names: list[str] | tuple[str, ...], *, dependencies: Callable[[type[Space]], Sequence[str]] = space_dependencies
) -> list[str]:
    """``names`` plus every space they depend on, each after its dependencies.

    ``dependencies(space_cls)`` names the spaces one space builds on: by default its required
    ones; :func:`songsim.spaces.store.build_order` passes the ones it will use on a catalogue.
    """
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name not in ordered:
            for dependency in dependencies(space_type(name)):
                visit(dependency)
            ordered.append(name)

    for name in names:
        visit(name)
    return ordered

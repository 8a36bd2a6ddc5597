"""Plug-in spaces: ``Space`` subclasses that installed packages register through the
``songsim.spaces`` entry-point group.

A package declares its space in ``pyproject.toml``::

    [project.entry-points."songsim.spaces"]
    toy-mel-mean = "songsim_toy_space:MelMeanSpace"

Once it is installed where songsim runs (``pip install -e PATH``, or a wheel), importing
:mod:`songsim.spaces` discovers it after the built-in spaces (:func:`discover_plugins`) and
registers the class under its ``name``, with the package and version it comes from
(:func:`songsim.spaces.base.plugin_source`). From then on it is a space like the built-in
ones: listed by ``python -m songsim spaces`` (origin ``"plug-in"``, ``package``,
``package_version``) and on the Models page, fitted by ``build --spaces NAME``, searched,
compared in studies, and it embeds uploads through :func:`songsim.query.search`. Its fitted
object is pickled by module path, like every space, so the package must stay installed.

A plug-in is code the owner of the environment chose to install, so it runs in songsim's
process (a catalogue folder, by contrast, never runs code). One that cannot be used is not
registered and never stops songsim: :func:`plugin_problems` lists it — entry point, package,
the error and the fix — for ``python -m songsim spaces`` (stderr) and the Models page, and
``space_type(NAME)`` says why it is missing. The checks, in order:

1. the entry point's module imports and the object exists;
2. it is a concrete subclass of :class:`songsim.spaces.base.Space` (``fit`` and ``transform``);
3. its class attributes are set and well-typed: ``name`` (letters, digits, ``.``, ``_``, ``-``),
   ``description``, ``inputs`` (registered input names, :mod:`songsim.spaces.inputs`),
   ``optional_inputs`` (the same, or ``()``; a ``"space:<name>"`` not registered is simply
   never available),
   ``required_labels``, ``metric`` (one of :data:`songsim.neighbours.METRICS` for a vector
   space, or :data:`songsim.neighbours.PRECOMPUTED` for a space that gives distances:
   ``vectors_`` the (n_tracks, n_tracks) distance matrix, ``transform`` each new song's
   (n_tracks,) distances, as :attr:`songsim.spaces.base.Space.metric` says), ``version``,
   ``trainable``, ``embeds_uploads``;
4. its name is not taken by a built-in space or another plug-in;
5. every space it builds on (``"space:<name>"`` inputs) is registered.

What ``fit`` and ``transform`` return is checked where every space's is
(:func:`songsim.spaces.base.checked_vectors`): a build skips a space whose vectors have the
wrong shape, with the reason in its report; an upload gets a clear error.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from songsim.errors import PluginError, SongsimError
from songsim.neighbours import METRICS, PRECOMPUTED
from songsim.spaces.base import (
    PluginSource,
    Space,
    mark_plugin_unloaded,
    plugin_source,
    register_space,
    space_dependencies,
    space_names,
    space_type,
    unregister_space,
)
from songsim.spaces.inputs import input_names, input_resolver

#: the entry-point group plug-in packages declare their spaces in
ENTRY_POINT_GROUP = "songsim.spaces"
#: a space's name is a folder name in ``.songsim/spaces/`` and an item of ``--spaces a,b``
_SPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: what a space's ``metric`` may be: a similarity of vectors, or distances given by the space
_SPACE_METRICS = (*METRICS, PRECOMPUTED)


@dataclass(frozen=True)
class PluginProblem:
    """An installed plug-in that songsim did not register.

    Attributes
    ----------
    entry_point : str
        Its line in the ``songsim.spaces`` group, ``"name = module:Class"``.
    package, package_version : str
        The distribution that declares it.
    message : str
        What is wrong and the fix (the :class:`~songsim.errors.PluginError`'s message).
    """

    entry_point: str
    package: str
    package_version: str
    message: str


_PROBLEMS: list[PluginProblem] = []


def plugin_problems() -> list[PluginProblem]:
    """The installed plug-ins that the last :func:`discover_plugins` could not register."""
    return list(_PROBLEMS)


def discover_plugins() -> list[PluginProblem]:
    """Register every usable space of the ``songsim.spaces`` entry-point group (module
    docstring) and return the problems with the others, which :func:`plugin_problems` keeps.

    Run once when :mod:`songsim.spaces` is imported, after the built-in spaces; running it
    again registers plug-ins installed since (those already registered stay as they are).
    """
    problems: list[PluginProblem] = []
    registered: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        source = _source(entry_point)
        try:
            cls = _checked_space_class(_load_alone(entry_point, source), source)
        except PluginError as exc:
            problems.append(_problem(source, str(exc), names=(entry_point.name,)))
            continue
        register_space(cls, plugin=source)
        registered[cls.name] = entry_point
    problems += _drop_plugins_missing_dependencies(registered)
    _PROBLEMS[:] = problems
    return plugin_problems()


def _drop_plugins_missing_dependencies(registered: dict[str, EntryPoint]) -> list[PluginProblem]:
    """Unregister the plug-ins of ``registered`` (space name -> entry point) that build on a
    space that is not registered, again after each round: dropping one may strand another."""
    problems = []
    while True:
        unmet = {}
        for name in registered:
            missing = [d for d in space_dependencies(space_type(name)) if d not in space_names()]
            if missing:
                unmet[name] = missing
        if not unmet:
            return problems
        for name, missing in unmet.items():
            source = plugin_source(name)
            unregister_space(name)
            message = (
                f"{_described(source)}: its space {name!r} builds on the space "
                f"{', '.join(missing)}, which is not registered: install the package that provides it, or remove "
                f"\"space:{missing[0]}\" from its inputs."
            )
            problems.append(_problem(source, message, names=(registered.pop(name).name, name)))


def _source(entry_point: EntryPoint) -> PluginSource:
    """Which package declares ``entry_point`` (``"unknown"`` when it comes from no installed
    distribution)."""
    dist = entry_point.dist
    return PluginSource(
        package=dist.name if dist is not None else "unknown",
        package_version=dist.version if dist is not None else "unknown",
        entry_point=f"{entry_point.name} = {entry_point.value}",
    )


def _described(source: PluginSource) -> str:
    """``Plug-in 'NAME' (entry point `NAME = module:Class` of package PACKAGE VERSION)``: how
    every problem names a plug-in."""
    name = source.entry_point.partition(" = ")[0]
    return f"Plug-in {name!r} (entry point `{source.entry_point}` of package {source.package} {source.package_version})"


def _problem(source: PluginSource, message: str, *, names: tuple[str, ...]) -> PluginProblem:
    """A problem record, also remembered under ``names`` for :func:`~songsim.spaces.base.space_type`."""
    mark_plugin_unloaded(names, message)
    return PluginProblem(entry_point=source.entry_point, package=source.package, package_version=source.package_version, message=message)


def _load_alone(entry_point: EntryPoint, source: PluginSource) -> object:
    """The object ``entry_point`` names, imported with any ``@register_space`` its module ran
    undone: songsim registers exactly what the entry point names, after the checks, so a
    module cannot replace a built-in space by registering itself on import."""
    before = {name: (space_type(name), plugin_source(name)) for name in space_names()}
    try:
        return entry_point.load()
    except Exception as exc:  # any error of foreign code: it is reported, songsim carries on
        raise PluginError(
            f"{_described(source)} failed to import: {type(exc).__name__}: {exc}. Fix the package (try "
            f"`python -c \"import {entry_point.module}\"`), or uninstall it (`pip uninstall {source.package}`)."
        ) from None
    finally:
        for name in space_names():
            if name not in before:
                unregister_space(name)
            elif space_type(name) is not before[name][0]:
                register_space(before[name][0], plugin=before[name][1])


def _checked_space_class(loaded: object, source: PluginSource) -> type[Space]:
    """``loaded`` if it is a usable space class (checks 2–4 of the module docstring), else a
    :class:`PluginError` naming the entry point, the package and the fix."""
    where = _described(source)
    if not (isinstance(loaded, type) and issubclass(loaded, Space)):
        raise PluginError(
            f"{where} names {loaded!r}, which is not a subclass of songsim.spaces.base.Space: point the "
            "entry point at the class (`module:Class`) and make it subclass Space."
        )
    if inspect.isabstract(loaded):
        missing = ", ".join(sorted(loaded.__abstractmethods__))
        raise PluginError(f"{where}: class {loaded.__name__} does not implement {missing}: define them (README, \"Plug-in spaces\").")
    wrong = _attribute_problems(loaded)
    if wrong:
        raise PluginError(f"{where}: class {loaded.__name__}: {'; '.join(wrong)} (README, \"Plug-in spaces\").")
    if loaded.name in space_names() and space_type(loaded.name) is not loaded:
        holder = plugin_source(loaded.name)
        owner = f"a space from package {holder.package} {holder.package_version}" if holder else "a built-in space of songsim"
        raise PluginError(
            f"{where}: class {loaded.__name__} is named {loaded.name!r}, the name of {owner}: give it another "
            "name (its class attribute `name`), and the entry point the same one."
        )
    return loaded


def _attribute_problems(cls: type[Space]) -> list[str]:
    """What is missing or wrong among the class attributes of ``cls``, in words (empty: none)."""
    name = getattr(cls, "name", None)
    inputs = getattr(cls, "inputs", None)
    required_labels = getattr(cls, "required_labels", None)
    problems = []
    if not (isinstance(name, str) and _SPACE_NAME.match(name)):
        problems.append(f"`name` is {name!r}; give a name of letters, digits, '.', '_', '-' (at most 64)")
    if not isinstance(getattr(cls, "description", None), str):
        problems.append("`description` is missing; give one line saying what the space is")
    if not (isinstance(inputs, (tuple, list)) and inputs and all(isinstance(i, str) for i in inputs)):
        problems.append(f"`inputs` is {inputs!r}; give a tuple of input names, e.g. (\"mel\",)")
    else:
        for input_name in inputs:
            try:
                input_resolver(input_name)
            except SongsimError:
                problems.append(f"`inputs` names {input_name!r}, which songsim does not compute; use {', '.join(input_names())}")
    optional = getattr(cls, "optional_inputs", ())
    if not (isinstance(optional, (tuple, list)) and all(isinstance(i, str) for i in optional)):
        problems.append(f"`optional_inputs` is {optional!r}; give a tuple of input names, or ()")
    else:
        for input_name in optional:
            try:
                input_resolver(input_name)
            except SongsimError:
                problems.append(f"`optional_inputs` names {input_name!r}, which songsim does not compute; use {', '.join(input_names())}")
    if not (isinstance(required_labels, (tuple, list)) and all(isinstance(c, str) for c in required_labels)):
        problems.append(f"`required_labels` is {required_labels!r}; give a tuple of tracks.csv columns, or ()")
    if cls.metric not in _SPACE_METRICS:
        problems.append(f"`metric` is {cls.metric!r}; use one of {', '.join(_SPACE_METRICS)}")
    if not isinstance(cls.version, int) or isinstance(cls.version, bool):
        problems.append(f"`version` is {cls.version!r}; give an int, bumped when the algorithm changes")
    problems += [f"`{flag}` is {getattr(cls, flag)!r}; give True or False" for flag in ("trainable", "embeds_uploads") if not isinstance(getattr(cls, flag), bool)]
    return problems

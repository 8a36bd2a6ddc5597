"""Panel studies: which spaces are compared, on which queries, and the pooled blind candidates.

A study lives in ``<catalogue>/studies/<name>.json`` (in the catalogue folder, not in the
derived ``.songsim`` folder: it is the owner's work, not a cache). It records, per query, the
top-k list of every compared space (``runs``) and their deduplicated union (``pool``), so the
ratings CSV stays blind and any space added later is scored on the pairs already rated.

Data model (JSON keys = attribute names)::

    Study
      name: str                      file-name-safe, unique in the catalogue
      k: int                         neighbours per space per query
      spaces: list[str]              compared spaces, in the order they were added
      queries: list[StudyQuery]
      seed: int                      query draw and per-rater shuffles
      raters_per_pair: int           R: how many raters judge each (query, candidate) pair
      panel_size: int                P: expected raters; each gets ~R/P of the pairs
      relevance_threshold: float     binary relevance for MAP and P@k: mean BROAD >= threshold
      artist_filter: bool            the query's artist is excluded from every run
      require_play: bool             a candidate can be rated only after it was played
      metric: str                    "own" (each space's own, Space.metric), "cosine" or
                                     "euclidean": the neighbour search of every run
      catalogue_fingerprint: str     of the catalogue the runs were computed on
      raters: list[str]              raters in the order they joined (their slot = position):
                                     a rater joins at their first saved rating, not at sign-in
      invitation_only: bool          raters sign in only with a link the owner made
                                     (:mod:`songsim.studies.identity`); else a new name may
                                     register itself
      removed_raters: dict[str, dict]  rater -> {"removed_at", "ratings": "excluded"|"kept"}:
                                     raters the owner removed (they stay in ``raters`` so no
                                     one else's slot moves; their queue is empty)
      reassigned: dict[str, list[list[str]]]  rater -> extra [query_id, candidate_id] pairs
                                     handed over from removed raters
      created_at: str                UTC ISO 8601
      app_version: str
      space_rounds: dict[str, int]   judging round of each space: 0 for the spaces the study
                                     was created with, then 1, 2, … per ``add-space``

    StudyQuery
      query_id: str                  a catalogue track id, or "upload:<sha256[:16]>"
      runs: dict[str, list[str]]     space -> candidate track ids, rank 1 first
      pool: list[str]                union of the runs, deduplicated, in first-seen order
      audio: str | None              for an uploaded query: its stored file, relative to the
                                     catalogue folder; None for a catalogue track

The rating scale is the MIREX one: BROAD 0/1/2 (not / somewhat / very similar) and an
optional FINE score 0–100.

Balanced assignment
-------------------
Every (query, candidate) pair is judged by R = ``raters_per_pair`` of the P = ``panel_size``
panel slots. A rater's slot is their position in ``raters`` modulo P. The pairs are put in one
seeded order (by the round in which the pair was pooled, then by query, then by candidate;
each order key a sha256 of the seed and the ids) and pair i goes to the slots
``{(i*R + j) mod P : j < R}``. The R*N slot assignments thus walk round the panel, so every
pair has exactly R slots and the slots' workloads differ by at most one pair overall and
within each query of a round; with R = P everyone rates everything. Pairs pooled by an added
space come after the older ones, so ``add-space`` never moves work already assigned.

A rater holds a slot only once they saved a rating (:func:`join_panel` is called then), so a
name that signs in and rates nothing takes no one's share. Before that, their queue is the
one of the next free position (:func:`rater_queue`'s preview). A removed rater keeps their
position (so no slot moves) but loses their queue: their pairs — the unrated ones, or all
of them when their ratings are excluded from the report — go to the remaining raters who
do not have them yet, least loaded first, until each pair again has R raters
(:func:`remove_from_panel`).

Rater names are compared normalised (stripped, casefolded: :func:`rater_key`), so
``alice`` and ``Alice `` are one person.

All randomness (query draw, assignment order, per-rater shuffles) is seeded from sha256 of
the study seed and the ids, never Python's salted ``hash()``, so it is the same in every
process and on every machine.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from filelock import FileLock, Timeout

from songsim import __version__
from songsim.errors import StudyError, UnknownSpaceError
from songsim.files import write_json
from songsim.neighbours import HUBNESS_METHODS
from songsim.neighbours import METRICS as SEARCH_METRICS

if TYPE_CHECKING:  # the search modules import torch: loaded only where runs are computed
    import pandas as pd

    from songsim.catalogue import Catalogue
    from songsim.query import Upload

STUDIES_DIRNAME = "studies"
#: BROAD scale of the MIREX audio music similarity task: grade -> meaning
BROAD_SCALE = {0: "not similar", 1: "somewhat similar", 2: "very similar"}
FINE_RANGE = (0.0, 100.0)
UPLOAD_QUERY_PREFIX = "upload:"
#: "own" in a study file: each space searched with its own similarity
#: (:attr:`songsim.spaces.base.Space.metric`; ``metric=None`` of :func:`songsim.query.search`)
OWN_METRIC = "own"
METRICS = (OWN_METRIC, *SEARCH_METRICS)
MAX_RATER_LENGTH = 64
#: seconds a study read-modify-write waits for another process holding the study's lock
LOCK_TIMEOUT_S = 60.0
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class StudyQuery:
    """One query of a study: every compared space's top-k and their pooled union."""

    query_id: str
    runs: dict[str, list[str]] = field(default_factory=dict)
    pool: list[str] = field(default_factory=list)
    audio: str | None = None


@dataclass
class Study:
    """A panel study (see the module docstring for every field)."""

    name: str
    k: int
    spaces: list[str]
    queries: list[StudyQuery]
    seed: int = 0
    raters_per_pair: int = 2
    panel_size: int = 2
    relevance_threshold: float = 1.0
    artist_filter: bool = True
    require_play: bool = True
    metric: str = "cosine"
    catalogue_fingerprint: str = ""
    raters: list[str] = field(default_factory=list)
    created_at: str = ""
    app_version: str = __version__
    space_rounds: dict[str, int] = field(default_factory=dict)
    invitation_only: bool = False
    removed_raters: dict[str, dict] = field(default_factory=dict)
    reassigned: dict[str, list[list[str]]] = field(default_factory=dict)

    @property
    def active_raters(self) -> list[str]:
        """Raters holding a slot and not removed, in joining order."""
        return [r for r in self.raters if r not in self.removed_raters]

    @property
    def excluded_raters(self) -> set[str]:
        """Removed raters whose ratings the report leaves out."""
        return {r for r, info in self.removed_raters.items() if (info or {}).get("ratings", "excluded") != "kept"}

    def canonical_rater(self, rater: str) -> str | None:
        """The spelling under which ``rater`` joined or was removed (same :func:`rater_key`), or None."""
        key = rater_key(rater)
        for known in [*self.raters, *self.removed_raters]:
            if rater_key(known) == key:
                return known
        return None

    def query(self, query_id: str) -> StudyQuery:
        """The query ``query_id`` (:class:`StudyError` naming the study when unknown)."""
        for item in self.queries:
            if item.query_id == query_id:
                return item
        raise StudyError(
            f"Query {query_id!r} is not in study {self.name!r}; its queries are "
            f"{', '.join(q.query_id for q in self.queries[:10])}{' …' if len(self.queries) > 10 else ''}."
        )

    @property
    def search_metric(self) -> str | None:
        """The ``metric`` of :func:`songsim.query.search` for this study's runs (``None``: each
        space's own, stored as ``"own"``)."""
        return None if self.metric == OWN_METRIC else self.metric

    @property
    def n_pairs(self) -> int:
        """Number of (query, candidate) pairs to judge: the sum of the pool sizes."""
        return sum(len(q.pool) for q in self.queries)

    def as_dict(self) -> dict:
        """JSON-ready dict (the study file's content)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict) -> Study:
        """The study stored as ``payload`` (as written by :meth:`as_dict`)."""
        data = dict(payload)
        data["queries"] = [StudyQuery(**q) for q in data.get("queries", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def check_study_name(name: str) -> str:
    """``name`` if it is usable as a file name (letters, digits, ``_ . -``; ≤ 64 characters)."""
    if not isinstance(name, str) or not _NAME_PATTERN.match(name) or name.endswith(RATERS_SUFFIX):
        raise StudyError(
            f"Study name {name!r} is not usable: use 1–64 letters, digits, '_', '.' or '-', "
            f"starting with a letter or digit (e.g. 'pilot-2026')."
        )
    return name


def studies_dir(catalogue_root: str | Path) -> Path:
    """``<catalogue>/studies``: one JSON file per study."""
    return Path(catalogue_root) / STUDIES_DIRNAME


def study_path(catalogue_root: str | Path, name: str) -> Path:
    """``<catalogue>/studies/<name>.json``."""
    return studies_dir(catalogue_root) / f"{check_study_name(name)}.json"


def check_rater_name(rater: str) -> str:
    """``rater`` stripped, if it is 1–64 printable characters (:class:`StudyError` otherwise)."""
    name = rater.strip() if isinstance(rater, str) else ""
    if not name or len(name) > MAX_RATER_LENGTH or not name.isprintable():
        raise StudyError(
            f"Rater name {rater!r} is not usable: give 1–{MAX_RATER_LENGTH} printable characters "
            f"(a name or an id such as 'rater-07'; no tabs or line breaks)."
        )
    return name


def rater_key(rater: str) -> str:
    """The identity of a rater name: :func:`check_rater_name` casefolded (``"Alice "`` → ``"alice"``)."""
    return check_rater_name(rater).casefold()


#: the suffix of a study's rater identities file, beside the study (:mod:`songsim.studies.identity`)
RATERS_SUFFIX = ".raters"


def list_studies(catalogue_root: str | Path) -> list[str]:
    """Names of the studies stored in the catalogue, sorted."""
    folder = studies_dir(catalogue_root)
    if not folder.is_dir():
        return []
    return sorted(
        p.stem for p in folder.glob("*.json") if _NAME_PATTERN.match(p.stem) and not p.stem.endswith(RATERS_SUFFIX)
    )


def load_study(catalogue_root: str | Path, name: str) -> Study:
    """The study ``name`` of the catalogue at ``catalogue_root``.

    Raises
    ------
    StudyError
        When there is no such study (the message lists the existing ones) or its file is not a
        readable study (the message names the file).
    """
    path = study_path(catalogue_root, name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = list_studies(catalogue_root)
        choices = f"its studies are {', '.join(existing)}" if existing else "it has no study yet"
        raise StudyError(
            f"No study {name!r} in {Path(catalogue_root)}: {choices}. Create one with "
            f"`python -m songsim study create {catalogue_root} --name {name} --spaces a,b`."
        ) from None
    try:
        payload = json.loads(text)
        study = Study.from_dict(payload)
        if not isinstance(study.queries, list) or not all(isinstance(q.pool, list) for q in study.queries):
            raise ValueError("queries must be a list of {query_id, runs, pool}")
    except (ValueError, TypeError, AttributeError) as exc:
        raise StudyError(
            f"{path} is not a readable study file ({exc}): restore it from a backup (or the "
            f"version history), or delete it and create the study again."
        ) from None
    return study


def save_study(catalogue_root: str | Path, study: Study) -> Path:
    """Write ``study`` to ``<catalogue>/studies/<name>.json`` atomically; returns the path.

    A plain overwrite: code that reads, changes and saves a study while others may do the
    same goes through :func:`add_space` / :func:`join_panel`, which hold the study's lock.
    """
    path = study_path(catalogue_root, study.name)
    write_json(path, study.as_dict())
    return path


@contextmanager
def _study_locked(catalogue_root: str | Path, name: str) -> Iterator[None]:
    """Hold the inter-process lock serialising read-modify-writes of one study file
    (``studies/<name>.json.lock``); a :class:`StudyError` naming it after the timeout."""
    path = study_path(catalogue_root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise StudyError(
            f"Another process has held {lock.lock_file} for over {LOCK_TIMEOUT_S:.0f} s "
            f"(a study being changed): try again in a moment."
        ) from None
    try:
        yield
    finally:
        lock.release()


def _seed_int(*parts: object) -> int:
    """A 64-bit seed from sha256 of ``parts`` (stable across processes, unlike ``hash()``)."""
    return int(_order_key(*parts)[:16], 16)


def _order_key(*parts: object) -> str:
    """A sha256 hex key of ``parts``: sorting by it is a seeded, reproducible shuffle."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def select_queries(catalogue: Catalogue, n: int, *, seed: int, eligible: np.ndarray | None = None) -> list[str]:
    """``n`` catalogue track ids to use as queries, stratified by genre, among the ``eligible``
    rows ((n_tracks,) bool; default every track — a study of an imported space draws only
    tracks that every compared space has a vector for).

    With genre labels, the genres are visited round-robin in a seeded order and each
    contributes the next track of its own seeded shuffle, so every genre gets ⌊n/G⌋ or ⌈n/G⌉
    queries (G genres; a genre with too few tracks gives all it has and the others make up the
    rest). Tracks without a genre form one more stratum. Without genre labels: a seeded random
    sample.

    Returns
    -------
    list of str [length n]
        Track ids in draw order.
    """
    rows = np.arange(len(catalogue)) if eligible is None else np.flatnonzero(eligible)
    track_ids = [catalogue.track_id_at(int(row)) for row in rows]
    if not 1 <= n <= len(track_ids):
        which = "tracks" if eligible is None else "tracks that every compared space has a vector for"
        raise StudyError(
            f"Cannot draw {n} queries from the {len(track_ids)} {which} of {catalogue.root}: "
            f"choose between 1 and {len(track_ids)} queries (--queries)."
        )
    rng = np.random.default_rng(_seed_int(seed, "queries"))
    if not catalogue.has_labels("genre"):
        return [track_ids[i] for i in rng.choice(len(track_ids), size=n, replace=False)]
    strata: dict[str, list[str]] = {}
    for track_id, genre in zip(track_ids, catalogue.labels("genre")[rows]):
        strata.setdefault("" if genre is None else str(genre), []).append(track_id)
    genres = sorted(strata)
    genres = [genres[i] for i in rng.permutation(len(genres))]
    shuffled = {g: [strata[g][i] for i in rng.permutation(len(strata[g]))] for g in genres}
    chosen: list[str] = []
    for depth in range(max(len(v) for v in shuffled.values())):
        chosen.extend(shuffled[g][depth] for g in genres if depth < len(shuffled[g]))
    return chosen[:n]


#: joins a space and a hub reduction in a study's run name: ``"handcrafted+mp"``
RUN_REDUCTION_SEPARATOR = "+"


def run_space(run: str) -> tuple[str, str]:
    """A study run's ``(space, hubness reduction)``: ``"handcrafted"`` → ``("handcrafted",
    "none")``, ``"handcrafted+mp"`` → ``("handcrafted", "mp")`` (the same space searched with
    mutual proximity: :data:`songsim.neighbours.HUBNESS_METHODS`), so a study can compare a
    space with and without hub reduction as two runs."""
    space, _, reduction = run.partition(RUN_REDUCTION_SEPARATOR)
    if reduction and reduction not in HUBNESS_METHODS[1:]:
        raise StudyError(
            f"Run {run!r}: {reduction!r} is no hub reduction; write SPACE+METHOD with METHOD one of {', '.join(HUBNESS_METHODS[1:])}."
        )
    return space, reduction or "none"


def _check_space(catalogue: Catalogue, run: str) -> None:
    """:class:`StudyError` unless ``run`` names a space built (or imported) in ``catalogue``,
    with a known hub reduction if any (:func:`run_space`)."""
    from songsim.spaces.store import built_space_names, space_info

    space, _ = run_space(run)
    built = built_space_names(catalogue)
    try:
        space_info(catalogue, space)
    except UnknownSpaceError:
        raise StudyError(f"Unknown space {space!r}: choose from {', '.join(built) or 'the spaces you build first'}.") from None
    if space not in built:
        raise StudyError(
            f"Space {space!r} is not built in {catalogue.root}: run "
            f"`python -m songsim build {catalogue.root} --spaces {space}` first."
        )


def _covered_by_all(catalogue: Catalogue, spaces: Sequence[str]) -> np.ndarray | None:
    """(n_tracks,) bool: the tracks every space has a vector for; ``None`` when that is all."""
    from songsim.spaces.base import covered_rows
    from songsim.spaces.store import load_built_space

    eligible = np.ones(len(catalogue), dtype=bool)
    for run in spaces:
        eligible &= covered_rows(load_built_space(catalogue, run_space(run)[0]))
    return None if eligible.all() else eligible


def _upload_query(catalogue: Catalogue, path: str | Path) -> tuple[StudyQuery, Upload]:
    """Store an audio file as an upload query; returns the query (no runs yet) and the upload."""
    from songsim.audio import audio_info
    from songsim.query import store_upload

    path = Path(path)
    if not path.is_file():
        raise StudyError(f"Upload {path} does not exist: give the path of a WAV, FLAC, OGG or MP3 file.")
    audio_info(path, check_duration_limits=True)  # header first: a 2-hour file is refused unread
    upload = store_upload(catalogue, path.read_bytes(), path.name)
    query = StudyQuery(
        query_id=UPLOAD_QUERY_PREFIX + upload.fingerprint[:16],
        audio=upload.path.relative_to(catalogue.root).as_posix(),
    )
    return query, upload


def _stored_upload(catalogue: Catalogue, query: StudyQuery) -> Upload:
    """The upload behind an upload query, re-read from its stored audio."""
    from songsim.query import store_upload

    path = catalogue.root / str(query.audio)
    if not path.is_file():
        raise StudyError(
            f"The audio of query {query.query_id} ({path}) is missing: restore that file (the "
            f"song uploaded when the study was created) so the query can be embedded again."
        )
    return store_upload(catalogue, path.read_bytes(), path.name)


def _space_runs(
    catalogue: Catalogue,
    run_name: str,
    queries: Sequence[StudyQuery],
    uploads: dict[str, Upload],
    *,
    k: int,
    metric: str,
    artist_filter: bool,
) -> list[list[str] | None]:
    """The top-``k`` track ids of every query in one run — a space, or a space with a hub
    reduction (:func:`run_space`) — rank 1 first, in query order.

    A catalogue query uses its stored vector; an upload (``uploads[query_id]``) is embedded
    through the space's fitted transform. The query itself is never returned; with
    ``artist_filter`` no track of the query's artist is either. A catalogue query the space
    has no vector for (an imported file that lacks it) gets no run (``None``): the space
    proposes nothing for it, and the report counts it as a missing run.
    """
    from songsim.query import SpaceLoader, search
    from songsim.spaces.base import covered_rows

    space_name, hubness = run_space(run_name)
    loader = SpaceLoader(catalogue)
    space = loader.space(space_name)
    covered = covered_rows(space)
    chosen = None if metric == OWN_METRIC else metric
    runs: list[list[str] | None] = []
    for query in queries:
        upload = uploads.get(query.query_id)
        if upload is None and not covered[catalogue.row_of(query.query_id)]:
            runs.append(None)
            continue
        found = search(
            catalogue, space, track_id=None if upload else query.query_id, upload=upload, k=k, metric=chosen,
            exclude_artist=artist_filter, hubness=hubness, loader=loader,
        )  # fmt: skip
        runs.append(found.track_ids(catalogue))
    return runs


def _add_runs(query: StudyQuery, space: str, run: list[str] | None) -> int:
    """Record ``run`` of ``space`` on ``query`` and pool its new candidates; returns how many
    (none for no run)."""
    if run is None:
        return 0
    query.runs[space] = run
    new = [c for c in dict.fromkeys(run) if c not in query.pool]
    query.pool.extend(new)
    return len(new)


def create_study(
    catalogue_root: str | Path,
    name: str,
    spaces: Sequence[str],
    *,
    n_queries: int = 20,
    k: int = 5,
    seed: int = 0,
    raters_per_pair: int = 2,
    panel_size: int | None = None,
    relevance_threshold: float = 1.0,
    artist_filter: bool = True,
    require_play: bool = True,
    metric: str = OWN_METRIC,
    query_ids: Sequence[str] | None = None,
    upload_files: Sequence[str | Path] | None = None,
) -> Study:
    """Create and save the study ``name``: its queries and the pooled top-``k`` of every space.

    Parameters
    ----------
    catalogue_root : str or Path
        A built catalogue folder; the study goes to ``studies/<name>.json`` in it.
    spaces : sequence of str
        Built spaces to compare (one is allowed; more can be added with :func:`add_space`).
    n_queries : int
        Catalogue queries drawn by :func:`select_queries` when ``query_ids`` is not given
        (0 with ``upload_files``: uploads only).
    k : int
        Neighbours per space per query (≥ 1).
    seed : int
        Seed of the query draw, the assignment and the per-rater shuffles.
    raters_per_pair, panel_size : int
        R raters judge each pair out of a panel of P (default P = R: everyone rates all).
    relevance_threshold : float
        Mean BROAD (0–2) at or above which a pair counts as relevant for MAP and P@k.
    artist_filter : bool
        Leave the query's artist out of every run (the MIREX artist filter).
    require_play : bool
        The rating page asks for a candidate to be played before it can be rated.
    metric : str
        ``"own"`` (each space's own similarity: cosine, euclidean for wavenet, ae-2d and
        spectrogram-l2), ``"cosine"`` or ``"euclidean"``.
    query_ids : sequence of str, optional
        Hand-picked catalogue queries (instead of the stratified draw).
    upload_files : sequence of paths, optional
        Audio files added as queries: stored with :func:`songsim.query.store_upload`, query id
        ``"upload:<first 16 hex of the content fingerprint>"``.

    Raises
    ------
    StudyError
        Existing name, unknown or unbuilt space, unknown query id, bad k / R / P / threshold /
        metric, or no query at all. Nothing is written then.
    """
    from songsim.catalogue import load_catalogue

    path = study_path(catalogue_root, name)
    if path.exists():
        raise StudyError(_exists_message(catalogue_root, name))
    spaces = list(spaces)
    panel_size = raters_per_pair if panel_size is None else panel_size
    _check_settings(spaces, k=k, raters_per_pair=raters_per_pair, panel_size=panel_size,
                    relevance_threshold=relevance_threshold, metric=metric)
    catalogue = load_catalogue(catalogue_root)
    for space in spaces:
        _check_space(catalogue, space)

    if query_ids is not None:
        unknown = [q for q in query_ids if q not in catalogue]
        if unknown:
            raise StudyError(
                f"Unknown query id(s) {', '.join(map(repr, unknown))}: use track_id values of "
                f"{catalogue.root / 'tracks.csv'} (e.g. {catalogue.track_ids[0]!r})."
            )
        catalogue_queries = list(dict.fromkeys(query_ids))
    elif n_queries == 0 and upload_files:
        catalogue_queries = []
    else:
        catalogue_queries = select_queries(catalogue, n_queries, seed=seed, eligible=_covered_by_all(catalogue, spaces))
    queries = [StudyQuery(query_id=q) for q in catalogue_queries]
    uploads: dict[str, Upload] = {}
    for file in upload_files or ():
        query, upload = _upload_query(catalogue, file)
        if query.query_id not in uploads:
            queries.append(query)
            uploads[query.query_id] = upload
    if not queries:
        raise StudyError(f"Study {name!r} has no query: give --queries N ≥ 1, --query-ids or --upload files.")

    for space in spaces:
        runs = _space_runs(catalogue, space, queries, uploads, k=k, metric=metric, artist_filter=artist_filter)
        for query, run in zip(queries, runs):
            _add_runs(query, space, run)
    study = Study(
        name=name, k=k, spaces=spaces, queries=queries, seed=seed, raters_per_pair=raters_per_pair,
        panel_size=panel_size, relevance_threshold=float(relevance_threshold), artist_filter=artist_filter,
        require_play=require_play, metric=metric, catalogue_fingerprint=catalogue.fingerprint(),
        created_at=_utc_now(), space_rounds={s: 0 for s in spaces},
    )
    with _study_locked(catalogue_root, name):
        if path.exists():  # created by someone else while the runs were computed
            raise StudyError(_exists_message(catalogue_root, name))
        save_study(catalogue_root, study)
    return study


def _exists_message(catalogue_root: str | Path, name: str) -> str:
    return (
        f"Study {name!r} already exists in {Path(catalogue_root)}: choose another name, or add a "
        f"space to it with `python -m songsim study add-space {catalogue_root} --name {name} --space SPACE`."
    )


def _check_settings(
    spaces: list[str], *, k: int, raters_per_pair: int, panel_size: int, relevance_threshold: float, metric: str
) -> None:
    """:class:`StudyError` for a study setting out of range."""
    problems = []
    if not spaces:
        problems.append("no space to compare: give at least one (--spaces a,b)")
    if len(set(spaces)) != len(spaces):
        problems.append(f"a space is listed twice in {', '.join(spaces)}")
    if k < 1:
        problems.append(f"k = {k}: give k ≥ 1 neighbours per space (--k)")
    if raters_per_pair < 1:
        problems.append(f"raters per pair = {raters_per_pair}: give at least 1")
    elif raters_per_pair > panel_size:
        problems.append(
            f"{raters_per_pair} raters per pair cannot come from a panel of {panel_size}: "
            f"raise --panel-size to ≥ {raters_per_pair} or lower --raters-per-pair"
        )
    if not 0 < relevance_threshold <= max(BROAD_SCALE):
        problems.append(
            f"relevance threshold {relevance_threshold:g} is outside (0, {max(BROAD_SCALE)}]: it is a mean BROAD "
            f"grade (0 not / 1 somewhat / 2 very similar), e.g. 1"
        )
    if metric not in METRICS:
        problems.append(f"metric {metric!r}: choose {' or '.join(METRICS)}")
    if problems:
        raise StudyError("Cannot create the study: " + "; ".join(problems) + ".")


def add_space(catalogue_root: str | Path, name: str, space: str) -> tuple[Study, int]:
    """Add ``space`` to study ``name``: its top-k for every query, pooling only new candidates.

    Runs use the study's k, metric and artist filter; upload queries are embedded again from
    their stored audio. Existing pools keep their order and every rating already given stays
    valid (ratings are keyed by query and candidate); the new pairs form the next judging
    round, assigned after the existing ones.

    Returns
    -------
    (Study, int)
        The saved study and the number of new (query, candidate) pairs to judge.
    """
    from songsim.catalogue import load_catalogue

    study = load_study(catalogue_root, name)
    if space in study.spaces:
        raise StudyError(f"Space {space!r} is already in study {name!r} (its spaces: {', '.join(study.spaces)}).")
    catalogue = load_catalogue(catalogue_root)
    _check_space(catalogue, space)
    uploads = {q.query_id: _stored_upload(catalogue, q) for q in study.queries if q.audio is not None}
    runs = _space_runs(catalogue, space, study.queries, uploads, k=study.k, metric=study.metric, artist_filter=study.artist_filter)
    with _study_locked(catalogue_root, name):
        study = load_study(catalogue_root, name)  # fresh: raters may have joined meanwhile
        if space in study.spaces:
            raise StudyError(f"Space {space!r} was added to study {name!r} by another process meanwhile.")
        rounds = {s: study.space_rounds.get(s, 0) for s in study.spaces}
        n_new = sum(_add_runs(query, space, run) for query, run in zip(study.queries, runs))
        study.spaces.append(space)
        study.space_rounds = {**rounds, space: max(rounds.values(), default=-1) + 1}
        save_study(catalogue_root, study)
    return study, n_new


def join_panel(catalogue_root: str | Path, name: str, rater: str) -> Study:
    """Add ``rater`` to the study's panel (if new) and return the study.

    Called when a rater saves their first rating (:meth:`songsim.studies.panel.RaterSession.save`),
    never at sign-in, so a name that rates nothing holds no slot. A name equal to a joined one
    after :func:`rater_key` (``"Alice "`` and ``"alice"``) is that rater. The read-modify-write
    holds the study's lock, so raters joining at the same moment from different processes are
    all kept. Joining order fixes each rater's slot. A removed rater cannot join again
    (:class:`StudyError`).
    """
    rater = check_rater_name(rater)
    study = load_study(catalogue_root, name)  # a clear error, and no lock file, when there is no such study
    if _joined(study, rater):
        return study
    with _study_locked(catalogue_root, name):
        study = load_study(catalogue_root, name)
        if not _joined(study, rater):
            study.raters.append(rater)
            save_study(catalogue_root, study)
    return study


def _joined(study: Study, rater: str) -> bool:
    known = study.canonical_rater(rater)
    if known is not None and known in study.removed_raters:
        raise StudyError(f"Rater {known!r} was removed from study {study.name!r} by its owner and cannot rate in it.")
    return known is not None


def set_invitation_only(catalogue_root: str | Path, name: str, invitation_only: bool) -> Study:
    """Make study ``name`` invitation-only (raters need the owner's link) or open to
    self-registration; returns the saved study."""
    load_study(catalogue_root, name)  # a clear error, and no lock file, when there is no such study
    with _study_locked(catalogue_root, name):
        study = load_study(catalogue_root, name)
        study.invitation_only = bool(invitation_only)
        save_study(catalogue_root, study)
    return study


def remove_from_panel(
    catalogue_root: str | Path, name: str, rater: str, *, rated: set[tuple[str, str]], keep_ratings: bool = False
) -> tuple[Study, int, int]:
    """Remove ``rater`` from study ``name``'s panel and hand their work to the others.

    The rater keeps their position in ``raters`` (no one else's slot moves) but their queue is
    emptied. Their assigned pairs — the ones not in ``rated`` (their rated pairs) with
    ``keep_ratings``, else every one (their ratings are then left out of the report) — go,
    pair by pair in the assignment order, to the remaining raters who do not have the pair,
    least loaded first (ties broken by a seeded order), while the pair has fewer than R
    remaining raters. A rater who never rated (no slot) is simply barred from joining.

    Returns
    -------
    (Study, int, int)
        The saved study, the pairs handed over, and the pairs left short of R raters because
        every remaining rater already has them (or no rater remains).
    """
    rater = check_rater_name(rater)
    load_study(catalogue_root, name)
    with _study_locked(catalogue_root, name):
        study = load_study(catalogue_root, name)
        known = study.canonical_rater(rater) or rater
        if known in study.removed_raters:
            raise StudyError(f"Rater {known!r} was already removed from study {name!r}.")
        mine = assigned_pairs(study, known) if known in study.raters else []
        to_move = [p for p in mine if not (keep_ratings and p in rated)]
        study.removed_raters[known] = {"removed_at": _utc_now(), "ratings": "kept" if keep_ratings else "excluded"}
        study.reassigned.pop(known, None)
        others = study.active_raters
        held = {r: set(assigned_pairs(study, r)) for r in others}
        load = {r: len(pairs) for r, pairs in held.items()}
        moved = uncovered = 0
        for pair in to_move:
            holders = [r for r in others if pair in held[r]]
            if len(holders) >= study.raters_per_pair:
                continue
            free = [r for r in others if pair not in held[r]]
            if not free:
                uncovered += 1
                continue
            chosen = min(free, key=lambda r: (load[r], _order_key(study.seed, "reassign", r, *pair)))
            study.reassigned.setdefault(chosen, []).append(list(pair))
            held[chosen].add(pair)
            load[chosen] += 1
            moved += 1
        save_study(catalogue_root, study)
    return study, moved, uncovered


def _pair_order(study: Study) -> list[tuple[str, str]]:
    """Every (query_id, candidate_id) pair of the study, in the seeded assignment order."""
    rounds = {s: study.space_rounds.get(s, 0) for s in study.spaces}
    keyed = []
    for query in study.queries:
        query_key = _order_key(study.seed, "query", query.query_id)
        for candidate in query.pool:
            pooled_in = min((rounds.get(s, 0) for s, run in query.runs.items() if candidate in run), default=0)
            pair_key = _order_key(study.seed, "pair", query.query_id, candidate)
            keyed.append(((pooled_in, query_key, pair_key), (query.query_id, candidate)))
    keyed.sort()
    return [pair for _, pair in keyed]


def rater_slot(study: Study, rater: str, *, preview: bool = False) -> int:
    """The panel slot (0 … panel_size − 1) of a rater who joined the study.

    With ``preview``, a rater who has not joined yet gets the slot they would take by joining
    now (the next position); otherwise :class:`StudyError`.
    """
    rater = check_rater_name(rater)
    known = study.canonical_rater(rater)
    if known is None or known not in study.raters:
        if preview:
            return len(study.raters) % max(study.panel_size, 1)
        raise StudyError(
            f"Rater {rater!r} has not joined study {study.name!r}: a rater joins with their first saved "
            f"rating (songsim.studies.study.join_panel)."
        )
    return study.raters.index(known) % max(study.panel_size, 1)


def assigned_pairs(study: Study, rater: str, *, preview: bool = False) -> list[tuple[str, str]]:
    """The (query_id, candidate_id) pairs ``rater`` is asked to judge, in assignment order:
    their slot's, then those handed over from removed raters (none for a removed rater).

    See "Balanced assignment" in the module docstring. Raises :class:`StudyError` when the
    rater has not joined, unless ``preview`` (:func:`rater_slot`).
    """
    known = study.canonical_rater(check_rater_name(rater))
    if known is not None and known in study.removed_raters:
        return []
    slot = rater_slot(study, rater, preview=preview)
    pairs = _pair_order(study)
    per_pair, panel = study.raters_per_pair, max(study.panel_size, 1)
    if per_pair < panel:
        pairs = [pair for i, pair in enumerate(pairs) if (slot - i * per_pair) % panel < per_pair]
    if known is not None and study.reassigned.get(known):
        mine = set(pairs)
        pooled = {(q.query_id, c) for q in study.queries for c in q.pool}
        extra = [tuple(p) for p in study.reassigned[known]]
        pairs = pairs + [p for p in dict.fromkeys(extra) if p not in mine and p in pooled]
    return pairs


@dataclass(frozen=True)
class QueueItem:
    """One query of a rater's queue: the query and its assigned candidates, in the order shown.

    Blind: no space names, ranks or scores.
    """

    query_id: str
    candidates: list[str]


def rater_queue(study: Study, rater: str) -> list[QueueItem]:
    """The rater's assigned pairs grouped by query, queries and candidates shuffled per rater
    (for a rater who has not joined yet: the pairs of the slot they would take now).

    The shuffle is seeded by the study seed and the rater name (sort by a sha256 key), so a
    rater sees the same order after a refresh or a restart, different raters see different
    orders, and candidates added later slot in without reordering the rest.
    """
    rater = check_rater_name(rater)
    by_query: dict[str, list[str]] = {}
    for query_id, candidate in assigned_pairs(study, rater, preview=True):
        by_query.setdefault(query_id, []).append(candidate)
    items = [
        QueueItem(query_id, sorted(candidates, key=lambda c, q=query_id: _order_key(study.seed, "order", rater, q, c)))
        for query_id, candidates in by_query.items()
    ]
    return sorted(items, key=lambda item: _order_key(study.seed, "order", rater, item.query_id))


def _rated_pairs(latest: pd.DataFrame, rater: str, *, study: str) -> set[tuple[str, str]]:
    """(query_id, candidate_id) pairs ``rater`` has rated in ``latest`` for the study ``study``."""
    rows = latest[(latest["rater"] == rater) & (latest["study"] == study)]
    return set(zip(rows["query_id"], rows["candidate_id"]))


def progress(study: Study, rater: str, latest: pd.DataFrame) -> tuple[int, int]:
    """(rated, assigned): how many of the rater's assigned pairs have a rating.

    ``latest`` is :func:`songsim.studies.ratings.latest_ratings` output (any studies; filtered here).
    """
    rater = check_rater_name(rater)
    assigned = assigned_pairs(study, rater)
    done = _rated_pairs(latest, rater, study=study.name)
    return sum(pair in done for pair in assigned), len(assigned)


def study_summary(study: Study) -> dict:
    """What ``study show --json`` prints: ``{"name", "k", "spaces", "queries": [{"query_id",
    "runs": {space: [ids, rank 1 first]}, "pool": [ids]}]}``."""
    return {
        "name": study.name,
        "k": study.k,
        "spaces": list(study.spaces),
        "queries": [{"query_id": q.query_id, "runs": dict(q.runs), "pool": list(q.pool)} for q in study.queries],
    }

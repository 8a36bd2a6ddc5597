"""Queries against a built catalogue: a catalogue track or an uploaded song → its top-k.

:func:`search` is the one search path: the CLI (``python -m songsim query``), the Explore
page, panel studies (pooling each query's runs) and ``evaluate`` all call it, so they give
the same answer for the same query. It resolves the similarity (``metric=None``: the space's
own, :attr:`songsim.spaces.base.Space.metric`), embeds an upload, opens the neighbour index
and applies the exclusions (the query itself; with the MIREX artist filter, its artist).
Where the spaces, indexes and upload vectors come from is a :class:`SpaceLoader`: by default
the catalogue's store; the app passes one backed by its shared caches.

An upload goes down exactly the catalogue path: decode → features (same per-content cache)
→ the space's *fitted* transform → the same neighbour index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from songsim import config
from songsim.audio import audio_info, bytes_fingerprint, file_fingerprint, load_clip
from songsim.catalogue import Catalogue
from songsim.errors import AudioDecodeError, SongsimError
from songsim.files import atomic_write
from songsim.neighbours import HUBNESS_METHODS, METRICS, PRECOMPUTED, NeighbourIndex, Neighbours, exclusion_mask
from songsim.spaces.base import Space, checked_vectors, covered_rows, fitted_inputs
from songsim.spaces.inputs import space_inputs
from songsim.spaces.store import built_space_names, features_cache_dir, load_built_space, open_index, space_info

#: columns of a neighbour table besides rank and score
TRACK_COLUMNS = ("track_id", "title", "artist", "album", "year", "genre", "emotion", "path")


@dataclass(frozen=True)
class Upload:
    """An uploaded song, stored under its content hash.

    Attributes
    ----------
    fingerprint : str
        Content hash of the uploaded bytes; also its file name in ``.songsim/uploads``.
    path : Path
        The stored copy (never the user's file name); for :func:`file_upload`, the file itself.
    name : str
        The user's file name, for display only.
    catalogue_row : int or None
        Row of the catalogue track with identical audio, if any (then it is excluded from
        its own neighbours, like a catalogue query).
    """

    fingerprint: str
    path: Path
    name: str
    catalogue_row: int | None


def store_upload(catalogue: Catalogue, data: bytes, filename: str) -> Upload:
    """Validate an uploaded file and store it under ``.songsim/uploads/<content hash><ext>``.

    The file is decoded first (raising a clear :class:`~songsim.errors.AudioError` naming
    ``filename``), so a bad upload never lands in the store.
    """
    extension = Path(filename).suffix.lower()
    if extension not in config.AUDIO_EXTENSIONS:
        raise AudioDecodeError(
            f"{filename}: unsupported format {extension or '(no extension)'!r}; upload one of "
            f"{', '.join(config.AUDIO_EXTENSIONS)} (convert other formats, e.g. with ffmpeg)."
        )
    load_clip(data, name=filename)
    fingerprint = bytes_fingerprint(data)
    path = catalogue.derived_dir / "uploads" / f"{fingerprint}{extension}"
    if not path.exists():
        with atomic_write(path) as handle:
            handle.write(data)
    fingerprints = catalogue.audio_fingerprints()
    row = fingerprints.index(fingerprint) if fingerprint in fingerprints else None
    return Upload(fingerprint=fingerprint, path=path, name=filename, catalogue_row=row)


def file_upload(catalogue: Catalogue, path: str | Path) -> Upload:
    """An audio file on this machine as a query, used where it lies: nothing is copied into
    ``.songsim/uploads`` (``python -m songsim query --audio FILE``; only the per-content
    feature cache of the spaces keeps what they computed, a few kB per file).

    The header (length 5 s – 20 min, rate 8–384 kHz) is checked before anything is decoded,
    then the excerpt is decoded once (raising a clear :class:`~songsim.errors.AudioError`
    naming the file); the file is hashed in 1 MiB chunks, never read whole into memory.

    Raises
    ------
    SongsimError
        ``path`` is a folder, or does not exist.
    AudioError
        Unsupported, corrupt, too short or long, wrong rate, silent, far beyond full scale.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise SongsimError(
            f"{path} is a folder: give the path of one audio file ({', '.join(config.AUDIO_EXTENSIONS)}) to search "
            "its neighbours (import a folder of songs as a catalogue with `python -m songsim import`)."
        )
    if not path.is_file():
        raise SongsimError(f"Audio file {path} does not exist: give the path of a WAV, FLAC, OGG or MP3 file.")
    audio_info(path, check_duration_limits=True)  # header only: a 2-hour file is refused unread
    load_clip(path)
    fingerprint = file_fingerprint(path)
    fingerprints = catalogue.audio_fingerprints()
    row = fingerprints.index(fingerprint) if fingerprint in fingerprints else None
    return Upload(fingerprint=fingerprint, path=path.resolve(), name=path.name, catalogue_row=row)


def embed_upload(catalogue: Catalogue, space: Space, upload: Upload, *, load_space: Callable[[str], Space]) -> np.ndarray:
    """The vector of an uploaded song in ``space``, (dim,) float32, via the fitted transform.

    ``load_space(name)`` returns another fitted space, for spaces built on other spaces (the
    upload is embedded there first). A transform giving another shape than the catalogue's
    vectors, or NaN/inf, raises :class:`~songsim.errors.SpaceOutputError` naming the space.
    """
    inputs = space_inputs(
        type(space),
        catalogue,
        paths=[upload.path],
        fingerprints=[upload.fingerprint],
        keys=[upload.fingerprint],
        dependency_vectors=lambda name: embed_upload(catalogue, load_space(name), upload, load_space=load_space)[None, :],
        n_jobs=1,
        names=fitted_inputs(space),  # the inputs its fit used (required, then the optional ones it had)
    )
    return checked_vectors(space, space.transform(inputs), n_songs=1, dim=space.dim, method="transform")[0]


def neighbours_of(
    catalogue: Catalogue,
    index: NeighbourIndex,
    *,
    vector: np.ndarray,
    query_row: int | None = None,
    k: int = 5,
    exclude_artist: bool = False,
    candidates: np.ndarray | None = None,
) -> Neighbours:
    """Top-``k`` of ``vector`` in ``index`` (any index over the catalogue's rows: a space's, or
    the 2-D map's coordinates), with the exclusions of :func:`search`.

    The query row (a catalogue query, or an upload identical to a catalogue track) is never
    returned; with ``exclude_artist`` no track of the query row's artist is either; with
    ``candidates`` ((n_tracks,) bool) only those rows may be returned.
    """
    artists = catalogue.labels("artist") if exclude_artist and query_row is not None else None
    mask = exclusion_mask(
        len(catalogue),
        query_row=query_row,
        artists=artists,
        query_artist=None if artists is None else artists[query_row],
    )
    if candidates is not None:
        mask |= ~np.asarray(candidates, dtype=bool)
    return index.query(np.asarray(vector, dtype=np.float32), k=k, exclude=mask)


class SpaceLoader:
    """Where :func:`search` gets fitted spaces, neighbour indexes and upload vectors.

    This one reads the catalogue's store, once per space and index for the loader's life
    (a study's queries share one load); the app subclasses it with methods backed by its
    shared caches (``pages/common.py``), and ``evaluate`` with its exact index.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._spaces: dict[str, Space] = {}
        self._indexes: dict[tuple[str, str], NeighbourIndex] = {}

    def space(self, name: str) -> Space:
        """The fitted space ``name`` (:func:`songsim.spaces.store.load_built_space`)."""
        if name not in self._spaces:
            self._spaces[name] = load_built_space(self.catalogue, name)
        return self._spaces[name]

    def index(self, space: Space, metric: str, hubness: str = "none") -> NeighbourIndex:
        """The neighbour index of ``space`` under ``metric``, with a hubness reduction or not
        (:func:`songsim.spaces.store.open_index`)."""
        key = (space.name, metric, hubness)
        if key not in self._indexes:
            self._indexes[key] = open_index(self.catalogue, space, metric=metric, hubness=hubness)
        return self._indexes[key]

    def upload_vector(self, space: Space, upload: Upload) -> np.ndarray:
        """``upload`` embedded in ``space``: (dim,) float32 (:func:`embed_upload`)."""
        return embed_upload(self.catalogue, space, upload, load_space=self.space)


@dataclass(frozen=True)
class SearchResult:
    """What :func:`search` found.

    Attributes
    ----------
    space : str
        The space searched.
    metric : str
        The similarity used ("cosine", "euclidean" or "precomputed"; score = cosine or −distance).
    vector : np.ndarray [shape=(dim,), float32]
        The query in the space (for a space that gives distances: its (n_tracks,) distances
        to every catalogue track).
    query_row : int or None
        The query's catalogue row (for an upload: the row of a track with identical audio).
    neighbours : Neighbours
        The top-k: ``indices`` (k,) catalogue rows, ``scores`` (k,), best first.
    """

    space: str
    metric: str
    vector: np.ndarray
    query_row: int | None
    neighbours: Neighbours

    def track_ids(self, catalogue: Catalogue) -> list[str]:
        """The neighbours' track ids, rank 1 first."""
        return [catalogue.track_id_at(int(i)) for i in self.neighbours.indices]


def resolve_metric(space: Space, metric: str | None) -> str:
    """``metric``, or the space's own similarity when ``None``; a clear error for any other name.

    A space that gives distances (its metric is ``"precomputed"``: an imported distance
    matrix, Musly) is searched only by its own distances (``None`` or ``"precomputed"``); a
    vector space never by ``"precomputed"``."""
    chosen = space.metric if metric is None else metric
    name = getattr(space, "name", type(space).__name__)
    if space.metric == PRECOMPUTED and chosen != PRECOMPUTED:
        raise SongsimError(
            f"Space {name!r} gives distances, not vectors: it has no {chosen} similarity. Search it by its own "
            f"distances (leave the similarity out, or choose 'own' in a study)."
        )
    if chosen == PRECOMPUTED:
        if space.metric != PRECOMPUTED:
            raise SongsimError(
                f"Space {name!r} gives vectors, not distances: 'precomputed' is the similarity of spaces that give "
                f"distances. Use one of {', '.join(METRICS)} (or none for the space's own)."
            )
        return chosen
    if chosen not in METRICS:
        raise SongsimError(f"Unknown similarity {metric!r}: use one of {', '.join(METRICS)} (or none for the space's own).")
    return chosen


def upload_capable_spaces(catalogue: Catalogue) -> list[str]:
    """The built spaces of ``catalogue`` that can embed an uploaded song, in sidebar order."""
    return [name for name in built_space_names(catalogue) if space_info(catalogue, name).embeds_uploads]


def search(
    catalogue: Catalogue,
    space: str | Space,
    *,
    track_id: str | None = None,
    upload: Upload | None = None,
    k: int = 5,
    metric: str | None = None,
    exclude_artist: bool = False,
    candidates: np.ndarray | None = None,
    hubness: str = "none",
    loader: SpaceLoader | None = None,
) -> SearchResult:
    """The top-``k`` of one query in one space: the one search path (module docstring).

    Parameters
    ----------
    catalogue : Catalogue
    space : str or Space
        A space name (loaded through ``loader``) or a fitted space.
    track_id, upload
        The query: a catalogue track, or a stored upload (:func:`store_upload`); exactly one.
    k : int >= 1
    metric : {"cosine", "euclidean", "precomputed"} or None
        ``None``: the space's own (:attr:`~songsim.spaces.base.Space.metric`); a space that
        gives distances is searched only by them (:func:`resolve_metric`).
    exclude_artist : bool
        The MIREX artist filter: no track of the query's artist (an upload has an artist
        only when its audio is identical to a catalogue track's).
    candidates : np.ndarray [shape=(n_tracks,), bool], optional
        Only these rows may be returned (``evaluate``: the songs that carry a label).
    hubness : {"none", "mp", "mp-gauss", "ls"}
        Rescale the distances to reduce hubs: mutual proximity (empirical, Gaussian) or local
        scaling (:class:`songsim.neighbours.HubnessReducedIndex`); scores are then −the
        rescaled distance.
    loader : SpaceLoader, optional
        Where spaces, indexes and upload vectors come from (default: the catalogue's store).

    Raises
    ------
    SongsimError
        Neither or both of ``track_id`` and ``upload``; an unknown track id
        (:class:`~songsim.errors.UnknownTrackError`); a space that cannot embed uploads; an
        unknown metric; a space not built (:class:`~songsim.errors.NotBuiltError`).
    """
    loader = loader or SpaceLoader(catalogue)
    fitted = loader.space(space) if isinstance(space, str) else space
    chosen = resolve_metric(fitted, metric)
    if (track_id is None) == (upload is None):
        raise SongsimError("A search needs one query: a catalogue track id or an uploaded song.")
    if hubness not in HUBNESS_METHODS:
        raise SongsimError(f"Unknown hubness reduction {hubness!r}: use one of {', '.join(HUBNESS_METHODS)}.")
    covered = covered_rows(fitted)
    if upload is None:
        row = catalogue.row_of(track_id)
        if not covered[row]:
            raise SongsimError(
                f"Space {fitted.name!r} has no vector for {track_id} (its imported file lacks it): pick another track, "
                "or import a file that covers it."
            )
        vector = np.asarray(fitted.vectors_[row], dtype=np.float32)
    else:
        if not fitted.embeds_uploads:
            raise SongsimError(
                f"Space {fitted.name!r} cannot embed a new song (it has vectors only for the catalogue's tracks): "
                f"search {upload.name} in a space that can, e.g. {', '.join(upload_capable_spaces(catalogue)) or 'handcrafted'}."
            )
        row = upload.catalogue_row
        vector = loader.upload_vector(fitted, upload)
    if not covered.all():
        candidates = covered if candidates is None else covered & np.asarray(candidates, dtype=bool)
    found = neighbours_of(
        catalogue, loader.index(fitted, chosen, hubness), vector=vector, query_row=row, k=k,
        exclude_artist=exclude_artist, candidates=candidates,
    )  # fmt: skip
    return SearchResult(space=fitted.name, metric=chosen, vector=vector, query_row=row, neighbours=found)


def neighbour_table(catalogue: Catalogue, found: Neighbours) -> pd.DataFrame:
    """The neighbours as a table: rank (1-based), score and the tracks' metadata."""
    columns = [c for c in TRACK_COLUMNS if c in catalogue.tracks]
    table = catalogue.tracks.iloc[found.indices][columns].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.insert(1, "score", found.scores.astype(float))
    return table


def table_records(table: pd.DataFrame) -> list[dict]:
    """A neighbour table as JSON-ready records (missing values as ``None``)."""
    clean = table.astype(object).where(table.notna(), None)
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()} for row in clean.to_dict("records")]


@dataclass(frozen=True)
class ResolvedQuery:
    """A query ready to search: where it is in the space and on the map.

    Attributes
    ----------
    vector : np.ndarray [shape=(dim,), float32]
        The query in the space.
    point : np.ndarray [shape=(2,), float32]
        The query on the map (a catalogue point, or an upload placed by ``transform``).
    row : int or None
        Its catalogue row (never returned as its own neighbour), ``None`` for a new song.
    audio_path : Path
        What the query player plays.
    label : str
        "artist — title" for a catalogue song, the file name for an upload.
    """

    vector: np.ndarray
    point: np.ndarray
    row: int | None
    audio_path: Path
    label: str


def track_labels(catalogue: Catalogue) -> list[str]:
    """"artist — title" of every row (the track id where the title is missing)."""
    artists, titles = catalogue.labels("artist"), catalogue.labels("title")
    return [
        f"{artist} — {title or track_id}" if artist else (title or track_id)
        for artist, title, track_id in zip(artists, titles, catalogue.track_ids)
    ]


def track_label(catalogue: Catalogue, row: int) -> str:
    """"artist — title" of one catalogue row."""
    track = catalogue.track(catalogue.track_id_at(row))
    name = track.get("title") or track["track_id"]
    return f"{track['artist']} — {name}" if track.get("artist") else name


def resolve_track(catalogue: Catalogue, space: Space, coords: np.ndarray, track_id: str) -> ResolvedQuery:
    """A catalogue track as a query; ``coords`` (n_tracks, 2) are the map's coordinates."""
    row = catalogue.row_of(track_id)
    return ResolvedQuery(
        vector=space.vectors_[row],
        point=np.asarray(coords[row], dtype=np.float32),
        row=row,
        audio_path=Path(catalogue.tracks["path"].iloc[row]),
        label=track_label(catalogue, row),
    )


def resolve_upload(fitted_map, upload: Upload, vector: np.ndarray) -> ResolvedQuery:
    """An upload as a query: its ``vector`` (dim,) from :func:`embed_upload`, placed on the
    map through the fitted reducer (callers cache the vector: embedding may run CNNs)."""
    return ResolvedQuery(
        vector=vector,
        point=fitted_map.transform(vector[None, :])[0],
        row=upload.catalogue_row,
        audio_path=upload.path,
        label=upload.name,
    )


def upload_metadata(catalogue: Catalogue, upload: Upload, *, load_space: Callable[[str], Space]) -> pd.DataFrame:
    """The Spotify-style features an upload gets in the ``metadata`` space: one row per
    feature with its value and where it came from (catalogue, measured from the audio, or
    imputed from the catalogue), so the user sees what the metadata-based spaces assume."""
    from songsim.measure import song_metadata

    reading = song_metadata(
        catalogue, path=upload.path, fingerprint=upload.fingerprint, key=upload.fingerprint,
        cache_dir=features_cache_dir(catalogue),
    )
    return load_space("metadata").explain(reading)

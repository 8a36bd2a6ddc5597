"""Queries: catalogue tracks and uploads go down the same path to the same neighbours."""

import numpy as np
import pytest

from songsim.catalogue import load_catalogue
from songsim.errors import AudioDecodeError, SilentAudioError
from songsim.neighbours import ExactIndex
from songsim.query import embed_upload, neighbour_table, neighbours_of, resolve_track, resolve_upload, store_upload
from songsim.spaces.store import load_built_space, load_or_fit_map, load_space, space_dir


@pytest.fixture(scope="module")
def opened(built_catalogue):
    catalogue = load_catalogue(built_catalogue)
    space = load_space(space_dir(catalogue.derived_dir, "handcrafted"))
    return catalogue, space, ExactIndex(space.vectors_, metric="cosine")


def test_track_query_never_returns_itself_and_filters_the_artist(opened):
    catalogue, space, index = opened
    row = catalogue.row_of("pads-00")
    found = neighbours_of(catalogue, index, vector=space.vectors_[row], query_row=row, k=5)
    assert row not in found.indices and len(found.indices) == 5
    filtered = neighbours_of(catalogue, index, vector=space.vectors_[row], query_row=row, k=5, exclude_artist=True)
    artists = catalogue.labels("artist")
    assert all(artists[i] != artists[row] for i in filtered.indices)
    table = neighbour_table(catalogue, found)
    assert list(table["rank"]) == [1, 2, 3, 4, 5]
    assert table["score"].is_monotonic_decreasing


def test_upload_of_a_catalogue_song_matches_the_catalogue_query(opened):
    catalogue, space, index = opened
    row = catalogue.row_of("bass-03")
    data = open(catalogue.tracks["path"][row], "rb").read()
    upload = store_upload(catalogue, data, "my song.wav")
    assert upload.catalogue_row == row
    assert upload.path.name == f"{upload.fingerprint}.wav"  # stored by content, not by the user's name
    load = lambda name: load_built_space(catalogue, name)  # noqa: E731
    np.testing.assert_allclose(embed_upload(catalogue, space, upload, load_space=load), space.vectors_[row], atol=1e-4)
    fitted = load_or_fit_map(catalogue, space, "umap")
    as_upload = resolve_upload(fitted, upload, embed_upload(catalogue, space, upload, load_space=load))
    as_track = resolve_track(catalogue, space, fitted.coords_, "bass-03")
    found_upload = neighbours_of(catalogue, index, vector=as_upload.vector, query_row=as_upload.row)
    found_track = neighbours_of(catalogue, index, vector=as_track.vector, query_row=as_track.row)
    assert list(found_upload.indices) == list(found_track.indices)
    assert np.isfinite(as_upload.point).all()


def test_bad_uploads_are_refused_and_not_stored(opened, tmp_path):
    catalogue, _, _ = opened
    before = set((catalogue.derived_dir / "uploads").glob("*")) if (catalogue.derived_dir / "uploads").exists() else set()
    with pytest.raises(AudioDecodeError, match="broken.mp3"):
        store_upload(catalogue, b"\x00\x01 definitely not mpeg" * 100, "broken.mp3")
    with pytest.raises(AudioDecodeError, match="song.m4a.*ffmpeg"):
        store_upload(catalogue, b"....", "song.m4a")
    import io

    import soundfile as sf

    silent = io.BytesIO()
    sf.write(silent, np.zeros(22050 * 8, dtype=np.float32), 22050, format="WAV")
    with pytest.raises(SilentAudioError, match="quiet.wav"):
        store_upload(catalogue, silent.getvalue(), "quiet.wav")
    after = set((catalogue.derived_dir / "uploads").glob("*")) if (catalogue.derived_dir / "uploads").exists() else set()
    assert after == before

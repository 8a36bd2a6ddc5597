"""Explore and the Models page on the distance-based ``musly`` space: a catalogue query, an
upload through the stored jukebox, and its row among the spaces."""

import pytest
from explore_app import open_app, tune_wav

from songsim.build import build


@pytest.fixture
def musly_app(catalogue_dir, monkeypatch):
    build(catalogue_dir, spaces=["musly"], map_methods=("pca",), n_jobs=1)
    return open_app(catalogue_dir, monkeypatch, space="musly", method="pca")


def test_explore_searches_musly_for_a_song_and_an_upload(musly_app):
    app = musly_app
    assert "Top-5 in the musly space" in [h.value for h in app.subheader]
    assert not app.error
    assert len(app.get("audio")) == 6  # the query and its top-5
    app.file_uploader(key="upload").set_value(("my-tune.wav", tune_wav(), "audio/wav")).run()
    assert not app.exception and not app.error
    assert len(app.get("audio")) == 6


def test_the_models_page_lists_musly_as_built(musly_app):
    musly_app.switch_page("pages/models.py").run()
    assert not musly_app.exception, musly_app.exception
    states = musly_app.dataframe[0].value.set_index("space")["state"]
    assert states["musly"] == "done"

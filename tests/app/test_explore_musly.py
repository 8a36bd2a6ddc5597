"""Explore and the Models page on the distance-based ``musly`` space: a catalogue query, an
upload through the stored jukebox, and its row among the spaces."""

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

from songsim.build import build

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def musly_app(built_catalogue, tmp_path, monkeypatch):
    root = Path(shutil.copytree(built_catalogue, tmp_path / "copy"))
    build(root, spaces=["musly"], map_methods=("pca",), n_jobs=1)
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(root))
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    at.session_state["space_name"] = "musly"  # what the sidebar's space selector writes
    at.session_state["method"] = "pca"
    at.run()
    assert not at.exception, at.exception
    return at


def test_explore_searches_musly_for_a_song_and_an_upload(musly_app):
    app = musly_app
    assert "Top-5 in the musly space" in [h.value for h in app.subheader]
    assert not app.error
    assert len(app.get("audio")) == 6  # the query and its top-5
    t = np.arange(22050 * 8) / 22050
    buffer = io.BytesIO()
    sf.write(buffer, (0.4 * np.sin(2 * np.pi * 330 * t) * np.exp(-((t * 4) % 1) * 6)).astype(np.float32), 22050, format="WAV")
    app.file_uploader(key="upload").set_value(("my-tune.wav", buffer.getvalue(), "audio/wav")).run()
    assert not app.exception and not app.error
    assert len(app.get("audio")) == 6


def test_the_models_page_lists_musly_as_built(musly_app):
    musly_app.switch_page("pages/models.py").run()
    assert not musly_app.exception, musly_app.exception
    states = musly_app.dataframe[0].value.set_index("space")["state"]
    assert states["musly"] == "done"

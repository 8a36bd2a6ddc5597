"""Explore on the pretrained ``musicnn`` space: what the tagger hears, for a catalogue song and
an upload."""

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
def musicnn_app(built_catalogue, tmp_path, monkeypatch):
    root = Path(shutil.copytree(built_catalogue, tmp_path / "copy"))
    build(root, spaces=["musicnn"], map_methods=("pca",), n_jobs=1)
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(root))
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    at.session_state["space_name"] = "musicnn"  # what the sidebar's space selector writes
    at.session_state["method"] = "pca"
    at.run()
    assert not at.exception, at.exception
    return at


def heard(at) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("What the tagger hears")]


def test_explore_shows_what_the_tagger_hears(musicnn_app):
    app = musicnn_app
    assert "Top-5 in the musicnn space" in [h.value for h in app.subheader]
    assert app.radio(key="metric:musicnn").value == "cosine"
    (line,) = heard(app)
    assert line.count(" · ") == 4  # five tags with their probabilities
    t = np.arange(22050 * 8) / 22050
    buffer = io.BytesIO()
    sf.write(buffer, (0.4 * np.sin(2 * np.pi * 330 * t) * np.exp(-((t * 4) % 1) * 6)).astype(np.float32), 22050, format="WAV")
    app.file_uploader(key="upload").set_value(("my-tune.wav", buffer.getvalue(), "audio/wav")).run()
    assert not app.exception and not app.error
    assert len(heard(app)) == 1 and heard(app)[0] != line
    app.session_state["space_name"] = "handcrafted"  # not a tagger: no such line
    app.run()
    assert not app.exception and heard(app) == []

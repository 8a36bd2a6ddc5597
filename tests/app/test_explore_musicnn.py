"""Explore on the pretrained ``musicnn`` space: what the tagger hears, for a catalogue song and
an upload."""

import pytest
from explore_app import open_app, tune_wav

from songsim.build import build


@pytest.fixture
def musicnn_app(catalogue_dir, monkeypatch):
    build(catalogue_dir, spaces=["musicnn"], map_methods=("pca",), n_jobs=1)
    return open_app(catalogue_dir, monkeypatch, space="musicnn", method="pca")


def heard(at) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("What the tagger hears")]


def test_explore_shows_what_the_tagger_hears(musicnn_app):
    app = musicnn_app
    assert "Top-5 in the musicnn space" in [h.value for h in app.subheader]
    assert app.radio(key="metric:musicnn").value == "cosine"
    (line,) = heard(app)
    assert line.count(" · ") == 4  # five tags with their probabilities
    app.file_uploader(key="upload").set_value(("my-tune.wav", tune_wav(), "audio/wav")).run()
    assert not app.exception and not app.error
    assert len(heard(app)) == 1 and heard(app)[0] != line
    app.session_state["space_name"] = "handcrafted"  # what the sidebar's space selector writes; not a tagger: no such line
    app.run()
    assert not app.exception and heard(app) == []

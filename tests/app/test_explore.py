"""The Explore page as a user drives it, through Streamlit's AppTest."""

import base64
import json
import re

import numpy as np
import pytest
from explore_app import APP, open_app, tune_wav
from streamlit.testing.v1 import AppTest

from songsim.catalogue import load_catalogue


@pytest.fixture
def app(built_catalogue, monkeypatch):
    return open_app(built_catalogue, monkeypatch)


def decoded(array) -> list:
    """A plotly JSON array: a list, or a typed array ``{"dtype", "bdata"}`` (base64)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).tolist()
    return list(array)


def audio_count(at) -> int:
    return len(at.get("audio"))


def markdown_text(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_opens_with_a_query_its_map_and_six_players(app):
    assert audio_count(app) == 6  # the query and its top-5
    assert len(app.get("plotly_chart")) == 1
    assert "Query" in [h.value for h in app.subheader]
    assert "1. " in markdown_text(app) and "5. " in markdown_text(app)
    assert any("trustworthiness" in c.value for c in app.caption)


def test_search_picks_the_query(app):
    app.selectbox(key="search").set_value("drums-03").run()
    assert not app.exception
    assert "Drums Artist 2 — Song 13" in markdown_text(app)
    assert audio_count(app) == 6


def test_large_catalogues_search_on_the_server(built_catalogue, monkeypatch):
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(built_catalogue))
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["search_list_max"] = 10  # the page's threshold, lowered below this catalogue's 24 songs
    at.run()
    assert not at.exception
    assert len(at.selectbox(key="search").options) == 0  # nothing listed before a search
    at.text_input(key="search_text").set_value("drums artist 2").run()
    options = at.selectbox(key="search").options  # every word, anywhere in "artist — title (id)"
    assert all(w in o.casefold() for o in options for w in ("drums", "artist", "2"))
    assert {o for o in options if "Drums Artist 2" in o} and len(options) == 4  # + drums-02
    at.text_input(key="search_text").set_value("SONG 13 artist").run()
    assert at.selectbox(key="search").options == ["Drums Artist 2 — Song 13 (drums-03)"]
    at.selectbox(key="search").set_value("drums-03").run()
    assert not at.exception
    assert "Drums Artist 2 — Song 13" in markdown_text(at)
    at.text_input(key="search_text").set_value("no such song").run()
    assert not at.exception and at.selectbox(key="search").disabled


def test_click_on_the_map_picks_the_query(app, built_catalogue):
    row = load_catalogue(built_catalogue).row_of("bass-04")  # a point's customdata is its catalogue row
    app.session_state["map"] = {"selection": {"points": [{"customdata": row}]}}
    app.run()
    assert not app.exception
    assert "Bass Artist 1 — Song 24" in markdown_text(app)
    app.session_state["map"] = {"selection": {"points": [{"customdata": [10_000]}]}}  # stale: ignored
    app.run()
    assert not app.exception and "Bass Artist 1 — Song 24" in markdown_text(app)


def test_the_map_draws_every_song_of_a_small_catalogue_clickable(app, built_catalogue):
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    catalogue_traces = [t for t in spec["data"] if t.get("name") not in ("top-k",) and t["marker"].get("symbol") != "star"]
    assert {t["type"] for t in spec["data"]} == {"scatter"}  # SVG below songsim.plots.WEBGL_ABOVE points
    rows = sorted(r for t in catalogue_traces for r in decoded(t["customdata"]))
    assert rows == list(range(len(load_catalogue(built_catalogue))))
    assert not any("showing" in c.value for c in app.caption)  # no level of detail at this size


def test_upload_places_a_new_song_and_lists_neighbours(app):
    app.file_uploader(key="upload").set_value(("my-tune.wav", tune_wav(), "audio/wav")).run()
    assert not app.exception
    assert not app.error
    assert "**my-tune.wav**" in markdown_text(app)
    assert audio_count(app) == 6


def test_bad_upload_shows_an_error_not_a_traceback(app):
    app.file_uploader(key="upload").set_value(("broken.wav", b"RIFF\x00\x00junk" * 50, "audio/wav")).run()
    assert not app.exception
    assert app.error and "broken.wav" in app.error[0].value
    assert audio_count(app) == 6  # the previous query still plays


@pytest.fixture
def trained_app(trained_catalogue, monkeypatch):
    """The app on the catalogue with trained spaces (wavenet among them)."""
    return open_app(trained_catalogue, monkeypatch)


def test_each_space_starts_at_its_own_similarity(trained_app):
    app = trained_app
    assert app.radio(key="metric:handcrafted").value == "cosine"
    # the sidebar's space selector writes session_state.space_name, which the page reads (AppTest
    # reruns the page itself, without app.py's sidebar, so the test sets that key directly)
    app.session_state["space_name"] = "wavenet"  # trained on distances, not angles
    app.run()
    assert not app.exception
    assert app.radio(key="metric:wavenet").value == "euclidean"
    assert "Top-5 in the wavenet space" in [h.value for h in app.subheader]
    assert any(re.search(r"· distance \d+\.\d{3}$", m.value) for m in app.markdown)  # a distance reads as one, never "−distance -0.09"


@pytest.mark.parametrize("method", ["pca", "tsne", "umap", "ae2d"])
def test_every_map_method_colouring_and_toggle_renders(app, method):
    app.radio(key="method").set_value(method).run()
    for colour in app.radio(key="colour_by").options:
        app.radio(key="colour_by").set_value(colour).run()
        assert not app.exception
    app.radio(key="where").set_value("map").run()
    app.radio(key="metric:handcrafted").set_value("euclidean").run()
    app.toggle(key="exclude_artist").set_value(True).run()
    assert not app.exception
    assert audio_count(app) == 6
    assert "Top-5 in the 2-D map" in [h.value for h in app.subheader]


def test_hub_reduction_reranks_the_top_5_with_rescaled_distances(app):
    def ranked() -> list[str]:
        return [m.value for m in app.markdown if m.value.startswith("**1. ") or m.value[2:4] in ("2.", "3.", "4.", "5.")]

    app.radio(key="method").set_value("pca").run()
    plain = ranked()
    assert plain and all("similarity" in line for line in plain)
    for method in ("mp", "mp-gauss", "ls"):
        app.selectbox(key="hubness").set_value(method).run()
        assert not app.exception, app.exception
        assert audio_count(app) == 6
        reduced = ranked()
        assert len(reduced) == 5 and all(re.search(r"· rescaled distance \d", line) for line in reduced)

"""The Models page: every space's state and its label-based scores."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_models_page_lists_spaces_and_scores_them(built_catalogue, monkeypatch):
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(built_catalogue))
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Models"
    states = at.dataframe[0].value.set_index("space")["state"]
    assert states["handcrafted"] == "built" and states["random"] == "built"
    scores = at.dataframe[1].value
    assert {"handcrafted", "random"} <= set(scores.columns)
    assert scores.loc["genre P@5", "handcrafted"] > scores.loc["genre P@5", "random"]
    assert any("Queries per space" in c.value for c in at.caption)

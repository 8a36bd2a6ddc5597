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
    assert states["handcrafted"] == "done" and states["random"] == "done"  # the Catalogue page's states
    assert states["genre-cnn"] == "missing"
    scores = at.dataframe[1].value
    assert {"handcrafted", "random"} <= set(scores.columns)
    genre_p = {name: scores.loc["genre P@5", name] for name in ("handcrafted", "random")}  # "0.950 [0.892, 0.992]"
    assert all(cell.count("[") == 1 for cell in genre_p.values())
    assert float(genre_p["handcrafted"].split()[0]) > float(genre_p["random"].split()[0])
    assert any("Queries per space" in c.value for c in at.caption)


def test_models_page_shows_each_learned_model_with_curves_and_confusion(trained_catalogue, monkeypatch):
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(trained_catalogue))
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    labels = [e.label for e in at.expander]
    genre = next(label for label in labels if label.startswith("**genre-cnn** · 256-d"))
    assert "on cpu" in genre and "test accuracy" in genre
    table = at.dataframe[0].value.set_index("space")
    assert table.loc["metadata", "state"] == "needs labels"  # the fixture has no Spotify features
    assert "danceability" in table.loc["metadata", "detail"]
    # the fused spaces use what the fixture has: genre-cnn, emotion-cnn, handcrafted and musicnn, not metadata
    assert table.loc["triplet", "state"] == "done" and table.loc["triplet", "detail"].endswith(
        "inputs: genre-cnn + emotion-cnn + handcrafted + musicnn"
    )
    used = ["space:genre-cnn", "space:emotion-cnn", "space:handcrafted", "space:musicnn"]
    assert list(table.loc["fusion-ae", "used_inputs"]) == used and list(table.loc["triplet", "used_inputs"]) == used
    assert list(table.loc["ae-2d", "used_inputs"]) == ["space:triplet"]
    assert list(table.loc["musicnn-triplet", "used_inputs"]) == ["space:musicnn"]
    assert any("Inputs used" in c.value for c in at.caption)
    confusion = [c for c in at.get("plotly_chart") if "test split: accuracy" in c.proto.spec]
    assert len(confusion) == 3  # the genre and emotion classifiers, and ae-2d's genre head


def test_models_page_shows_the_literature_models_their_curves_and_list_figures(trained_catalogue, monkeypatch):
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(trained_catalogue))
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    states = at.dataframe[0].value.set_index("space")["state"]
    for name in ("spectrogram-pca", "spectrogram-l2", "wavenet", "chroma-lstm", "ali"):
        assert states[name] == "done", name
    scores = at.dataframe[1].value
    assert {"wavenet", "chroma-lstm", "ali", "spectrogram-pca"} <= set(scores.columns)
    for n in (3, 5, 10):
        assert f"top-{n} overlap (album/artist)" in scores.index and f"top-{n} edit distance (album/artist)" in scores.index
    labels = [e.label for e in at.expander]
    for name in ("wavenet", "chroma-lstm", "ali"):
        assert any(label.startswith(f"**{name}** · 64-d") for label in labels), name
    charts = [c.proto.SerializeToString() for c in at.get("vega_lite_chart")]
    assert any(b"generator" in chart and b"discriminator" in chart for chart in charts)  # ALI's two losses


def test_the_models_and_catalogue_pages_agree_that_a_space_is_stale(built_catalogue, tmp_path, monkeypatch):
    import shutil

    import soundfile as sf

    root = Path(shutil.copytree(built_catalogue, tmp_path / "copy"))
    audio, sr_hz = sf.read(root / "audio" / "pads-00.wav")
    sf.write(root / "audio" / "pads-00.wav", audio[::-1], sr_hz)  # the same length, other audio
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(root))
    monkeypatch.setenv("SONGSIM_HOME", str(tmp_path / "home"))
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    models = at.dataframe[0].value.set_index("space")
    assert models.loc["handcrafted", "state"] == "stale" and "audio changed" in models.loc["handcrafted", "detail"]
    assert models.loc["random", "state"] == "stale"
    assert any(b.label.startswith("Build ") and "handcrafted" in b.label for b in at.button)
    at.switch_page("pages/catalogue.py").run()
    assert not at.exception, at.exception
    stages = next(df.value for df in at.dataframe if "stage" in df.value.columns).set_index("stage")["state"]
    assert stages["space:handcrafted"] == "stale" and stages["space:random"] == "stale"

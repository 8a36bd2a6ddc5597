"""The app builds an unbuilt catalogue under a progress display, or says what is wrong."""

import shutil
from pathlib import Path

from catalogues import make_small_catalogue
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_a_hand_made_catalogue_with_audio_elsewhere_builds_and_opens(tmp_path, monkeypatch):
    made = make_small_catalogue(tmp_path / "made", per_genre=3)
    audio_elsewhere = shutil.move(str(made / "audio"), str(tmp_path / "music"))
    rows = (made / "tracks.csv").read_text().replace("audio/", f"{audio_elsewhere}/")
    catalogue = tmp_path / "my catalogue"
    catalogue.mkdir()
    (catalogue / "tracks.csv").write_text(rows)
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(catalogue))

    at = AppTest.from_file(APP, default_timeout=300).run()
    assert not at.exception, at.exception
    assert [s.label for s in at.status][0].startswith("Ready: 12 songs")
    assert len(at.get("audio")) == 6
    assert (catalogue / ".songsim" / "spaces" / "handcrafted" / "meta.json").is_file()


def test_a_broken_tracks_csv_is_reported_not_raised(tmp_path, monkeypatch):
    (tmp_path / "tracks.csv").write_text("track_id,path\na,missing.wav\na,also-missing.wav\n")
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    message = at.error[0].value
    assert "line 2" in message and "line 3: duplicate track_id 'a'" in message
    assert not at.get("audio")

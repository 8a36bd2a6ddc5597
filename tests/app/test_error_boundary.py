"""The app's one error boundary (app.py): the reproduced failures of issue 13 (problem 5) show an
``st.error`` with the fix on every page, never a traceback, and a rater sees no server path.

Every run here goes through app.py as it does on a server (``st.navigation``), not through
Streamlit's v1 fallback that AppTest uses for a page reached by ``switch_page``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from songsim.studies.study import create_study

APP = str(Path(__file__).resolve().parents[2] / "app.py")
OWNER_PAGES = ("pages/explore.py", "pages/models.py", "pages/studies.py", "pages/rate.py")


@pytest.fixture(autouse=True)
def through_app(monkeypatch):
    """Make every AppTest run execute app.py, as a server does once st.navigation ran."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture
def catalogue(built_catalogue, tmp_path) -> Path:
    """A private copy of the built catalogue, free to damage."""
    return Path(shutil.copytree(built_catalogue, tmp_path / "catalogue"))


def open_app(catalogue: Path, monkeypatch, page: str | None = None, **kwargs) -> AppTest:
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(catalogue))
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params.update(kwargs.get("query_params", {}))
    at.secrets.update(kwargs.get("secrets", {}))
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def errors(at: AppTest) -> list[str]:
    assert not at.exception, [e.message for e in at.exception]
    return [e.value for e in at.error]


def test_an_audio_file_deleted_after_a_build_is_an_error_on_every_page(catalogue, monkeypatch):
    create_study(catalogue, "pilot", ["handcrafted", "random"], n_queries=2, k=2, raters_per_pair=1, panel_size=1)
    removed = min((catalogue / "audio").iterdir())
    removed.unlink()
    for page in OWNER_PAGES:
        shown = errors(open_app(catalogue, monkeypatch, page))
        assert any(f"audio file {removed} does not exist" in e and "Catalogue" in e for e in shown), (page, shown)


def test_a_study_track_removed_from_tracks_csv_is_an_error_without_server_paths_for_a_rater(catalogue, monkeypatch):
    from songsim.studies.identity import register

    study = create_study(catalogue, "pilot", ["handcrafted", "random"], n_queries=2, k=2, raters_per_pair=1, panel_size=1)
    name, token = register(catalogue, "pilot", "ada")
    tracks = pd.read_csv(catalogue / "tracks.csv", dtype=str)
    gone = {q.query_id for q in study.queries}
    tracks[~tracks["track_id"].isin(gone)].to_csv(catalogue / "tracks.csv", index=False)
    at = open_app(
        catalogue, monkeypatch, secrets={"owner_passcode": "owner-secret"},
        query_params={"study": "pilot", "rater": name, "token": token},
    )  # fmt: skip
    shown = errors(at)
    assert any("is not in tracks.csv" in e and "study owner" in e for e in shown), shown
    assert not any(str(catalogue) in e or "/" + catalogue.name + "/" in e for e in shown), shown


def test_a_ratings_csv_with_a_bad_header_is_an_error_on_the_studies_page(catalogue, monkeypatch):
    from songsim.studies.ratings import ratings_path

    create_study(catalogue, "pilot", ["handcrafted", "random"], n_queries=2, k=2, raters_per_pair=1, panel_size=1)
    path = ratings_path(catalogue)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("when,who,what\n1,2,3\n", encoding="utf-8")
    shown = errors(open_app(catalogue, monkeypatch, "pages/studies.py"))
    assert any(str(path) in e and "first line" in e for e in shown), shown


def test_an_import_into_a_folder_that_cannot_be_written_is_an_error(catalogue, tmp_path, monkeypatch):
    import songsim.importers

    monkeypatch.setenv("SONGSIM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SONGSIM_ROOTS", str(tmp_path))
    (tmp_path / "a-file").write_text("not a folder")

    def import_into(target: Path) -> list[str]:
        at = open_app(catalogue, monkeypatch, "pages/catalogue.py")
        at.text_input(key="import-audio").input(str(catalogue / "audio"))
        at.text_input(key="import-target").input(str(target))
        next(b for b in at.button if b.label == "Import").click().run()
        return errors(at)

    shown = import_into(tmp_path / "a-file" / "catalogue")  # a folder under a file: cannot be made
    assert any(str(tmp_path / "a-file") in e and "could not write" in e for e in shown), shown

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(songsim.importers, "atomic_write", denied)  # as root nothing is read-only: simulate it
    shown = import_into(tmp_path / "locked")
    assert any("permission denied" in e and "choose a folder you may write to" in e for e in shown), shown
    assert not (tmp_path / "locked" / "tracks.csv").exists()


def test_redact_paths_keeps_only_the_last_part_of_every_absolute_path():
    from songsim.errors import redact_paths

    assert redact_paths("Track 'a' is not in /srv/cat/tracks.csv: restore it.") == "Track 'a' is not in tracks.csv: restore it."
    assert redact_paths("line 14: audio file /srv/cat/audio/x.wav does not exist") == "line 14: audio file x.wav does not exist"
    assert redact_paths("(~/music/a.wav, C:\\music\\b.wav)") == "(a.wav, b.wav)"
    assert redact_paths("grades 0/1/2, see https://example.org/a/b") == "grades 0/1/2, see https://example.org/a/b"

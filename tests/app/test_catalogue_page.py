"""The Catalogue page: known catalogues and switching, importing a folder, stage states and building."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from catalogues import make_small_catalogue
from streamlit.testing.v1 import AppTest

from pages.common import CHOSEN_CATALOGUE_KEY
from songsim.build import build
from songsim.catalogues import list_catalogues

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "pages/catalogue.py"


@pytest.fixture(scope="module")
def small_built(tmp_path_factory) -> Path:
    """A small catalogue built like the app's first start (default spaces and every map)."""
    root = make_small_catalogue(tmp_path_factory.mktemp("catalogue-page") / "small", per_genre=2)
    build(root, spaces=["handcrafted", "random"], n_jobs=1)
    return root


@pytest.fixture
def home(tmp_path, tmp_path_factory, monkeypatch) -> Path:
    monkeypatch.setenv("SONGSIM_HOME", str(tmp_path / "home"))
    # the page reads and writes only under these: this run's pytest folders (small_built is in another)
    monkeypatch.setenv("SONGSIM_ROOTS", str(tmp_path_factory.getbasetemp()))
    return tmp_path / "home"


def open_catalogue_page(default: Path, monkeypatch) -> AppTest:
    """The app with ``default`` as its catalogue, on the Catalogue page. An unbuilt default
    fails its automatic build fast (no tracks.csv), which the first run on Explore shows."""
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(default))
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert not at.exception, at.exception
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Catalogue"
    return at


def stages(at: AppTest) -> dict[str, str]:
    table = next(df.value for df in at.dataframe if "stage" in df.value.columns)
    return dict(zip(table["stage"], table["state"]))


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def write_collection(folder: Path) -> Path:
    """rock/ and jazz/ folders of 6 s tones, plus one 1 s file that the import must reject."""
    rng = np.random.default_rng(0)
    for g, genre in enumerate(("rock", "jazz")):
        (folder / genre).mkdir(parents=True)
        for i in range(3):
            t = np.arange(6 * 22_050) / 22_050
            y = 0.3 * np.sin(2 * np.pi * (110 * (g + 1) + 30 * i) * t) + 0.02 * rng.standard_normal(t.size)
            sf.write(folder / genre / f"{genre}-{i}.wav", y.astype(np.float32), 22_050)
    sf.write(folder / "jazz" / "too-short.wav", np.zeros(22_050, dtype=np.float32) + 0.1, 22_050)
    return folder


def test_the_page_shows_the_open_catalogue_and_its_stage_states(small_built, home, monkeypatch):
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(small_built))
    at = AppTest.from_file(APP, default_timeout=300).run()  # Explore, on the built catalogue
    assert not at.exception, at.exception
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    known = at.dataframe[0].value
    assert list(known["name"])[0] == "demo"
    open_row = known[known["open"] == "●"].iloc[0]
    assert open_row["folder"] == str(small_built) and open_row["tracks"] == 8 and open_row["state"] == "built"
    states = stages(at)
    assert states["catalogue"] == "done"
    for stage in ("features:handcrafted", "space:handcrafted", "space:random", "map:handcrafted:umap", "map:random:tsne"):
        assert states[stage] == "done", stage
    assert states["space:genre-cnn"] == "missing" and states["space:metadata"] == "needs labels"
    assert any("up to date" in s.value for s in at.success)
    assert not [b for b in at.button if b.label == "Build what is missing or stale"]


def test_importing_a_folder_lists_problems_registers_switches_and_builds(home, tmp_path, monkeypatch):
    music = write_collection(tmp_path / "music")
    target = tmp_path / "imported"
    at = open_catalogue_page(tmp_path / "empty-default", monkeypatch)
    assert stages(at) == {"catalogue": "missing"}

    at.text_input(key="import-audio").input(str(music))
    at.selectbox(key="import-layout").select("folders")
    at.text_input(key="import-target").input(str(target))
    button(at, "Import").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]

    assert at.session_state[CHOSEN_CATALOGUE_KEY] == str(target.resolve())  # app.py serves it from now on
    assert any(f"Open in this session: **{target.resolve()}**" in c.value for c in at.caption)
    registry = json.loads((home / "catalogues.json").read_text())
    assert [e["path"] for e in registry["catalogues"]] == [str(target.resolve())]
    assert any("Imported 6 tracks" in s.value for s in at.success)
    problems = next(df.value for df in at.dataframe if "reason" in df.value.columns)
    assert list(problems["item"]) == ["jazz/too-short.wav"] and "5" in problems["reason"].iloc[0]
    states = stages(at)
    assert states["catalogue"] == "done" and states["space:handcrafted"] == "missing"
    assert states["features:handcrafted"] == "missing"
    open_row = at.dataframe[0].value.set_index("open").loc["●"]
    assert open_row["folder"] == str(target.resolve())

    button(at, "Build it now").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    states = stages(at)
    for stage in ("features:handcrafted", "space:handcrafted", "space:random", "map:handcrafted:pca", "map:random:umap"):
        assert states[stage] == "done", stage
    assert any(s.value.startswith("Last build: built") for s in at.success)


@pytest.mark.parametrize(
    ("audio", "expected"),
    [
        ("{tmp}/nowhere", "{tmp}/nowhere does not exist"),
        ("relative/music", "is not an absolute path"),
        ("{tmp}/no-audio", "No track could be imported from {tmp}/no-audio"),
    ],
)
def test_a_bad_audio_folder_is_an_error_naming_it(audio, expected, home, tmp_path, monkeypatch):
    (tmp_path / "no-audio").mkdir()
    (tmp_path / "no-audio" / "notes.txt").write_text("not audio")
    at = open_catalogue_page(tmp_path / "empty-default", monkeypatch)
    at.text_input(key="import-audio").input(audio.format(tmp=tmp_path))
    at.text_input(key="import-target").input(str(tmp_path / "target"))
    button(at, "Import").click().run()
    assert not at.exception, at.exception
    assert any(expected.format(tmp=tmp_path) in e.value for e in at.error), [e.value for e in at.error]
    assert not (home / "catalogues.json").exists()


def test_a_malformed_metadata_csv_is_an_error_naming_it(home, tmp_path, monkeypatch):
    music = write_collection(tmp_path / "music")
    bad = tmp_path / "meta.csv"
    bad.write_bytes(b"")
    at = open_catalogue_page(tmp_path / "empty-default", monkeypatch)
    at.text_input(key="import-audio").input(str(music))
    at.text_area(key="import-metadata").input(f"{bad}\n{tmp_path}/absent.csv")
    button(at, "Import").click().run()
    assert any(f"{tmp_path}/absent.csv does not exist" in e.value for e in at.error)
    at.text_area(key="import-metadata").input(str(bad))
    at.text_input(key="import-target").input(str(tmp_path / "target"))
    button(at, "Import").click().run()
    assert not at.exception, at.exception
    assert any(str(bad) in e.value and "empty" in e.value for e in at.error), [e.value for e in at.error]


def test_switching_to_a_catalogue_serves_it_on_every_page(small_built, home, tmp_path, monkeypatch):
    empty = tmp_path / "empty-default"
    at = open_catalogue_page(empty, monkeypatch)
    at.text_input(key="add-folder").input(str(tmp_path))  # a folder without tracks.csv
    button(at, "Add and open").click().run()
    assert any(f"There is no tracks.csv in {tmp_path}" in e.value for e in at.error)

    at.text_input(key="add-folder").input(str(small_built))
    button(at, "Add and open").click().run()
    assert not at.exception, at.exception
    assert at.session_state[CHOSEN_CATALOGUE_KEY] == str(small_built)
    assert stages(at)["space:handcrafted"] == "done"
    assert [k.path for k in list_catalogues()][1:] == [small_built]

    # AppTest runs a switched-to page without app.py, so the next run of the whole app (app.py,
    # its sidebar, then Explore) is a fresh AppTest that carries this session's choice.
    app = AppTest.from_file(APP, default_timeout=300)
    app.session_state[CHOSEN_CATALOGUE_KEY] = at.session_state[CHOSEN_CATALOGUE_KEY]
    app.run()
    assert not app.exception, app.exception
    assert app.session_state["catalogue_root"] == str(small_built)
    assert any(str(small_built) in c.value for c in app.sidebar.caption)
    assert len(app.get("audio")) == 6  # the query and its top 5, from the switched catalogue

    pick = next(s for s in at.selectbox if s.label == "Catalogue")
    pick.select(empty.resolve()).run()
    button(at, "Open").click().run()
    assert not at.exception, at.exception
    assert at.session_state[CHOSEN_CATALOGUE_KEY] == str(empty.resolve())
    assert stages(at) == {"catalogue": "missing"}


def test_the_page_is_for_the_study_owner_when_a_passcode_is_set(home, tmp_path, monkeypatch):
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(tmp_path / "empty-default"))
    at = AppTest.from_file(APP, default_timeout=300)
    at.secrets["owner_passcode"] = "only-the-owner"
    at.run()
    assert not at.exception, at.exception
    with pytest.raises(ValueError, match="Known pages"):  # not registered for a rater's session
        at.switch_page(PAGE)
    at.session_state["owner_passcode"] = "only-the-owner"  # what the Owner sign-in page stores
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Catalogue"


# --- file access only under the configured roots (issue 13, problem 1) ------------------------


def test_a_metadata_file_outside_the_roots_is_refused_unread(home, tmp_path, monkeypatch):
    music = write_collection(tmp_path / "music")
    outside = Path(tempfile.mkdtemp(prefix="songsim-outside-"))  # not under the roots
    shadow = outside / "shadow"
    shadow.write_text("root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    at = open_catalogue_page(tmp_path / "empty-default", monkeypatch)
    at.text_input(key="import-audio").input(str(music))
    at.text_area(key="import-metadata").input(str(shadow))
    at.text_input(key="import-target").input(str(tmp_path / "target"))
    button(at, "Import").click().run()
    assert not at.exception, at.exception
    shown = [e.value for e in at.error]
    assert any("is outside the folders this app may read and write" in e and "SONGSIM_ROOTS" in e for e in shown), shown
    assert not any("root:*" in e or "19000" in e for e in shown), shown
    assert not (tmp_path / "target").exists()
    shutil.rmtree(outside)


def test_a_target_outside_the_roots_is_refused_and_not_created(home, tmp_path, monkeypatch):
    music = write_collection(tmp_path / "music")
    pwn = Path("/etc/songsim-pwn")
    assert not pwn.exists()
    at = open_catalogue_page(tmp_path / "empty-default", monkeypatch)
    at.text_input(key="import-audio").input(str(music))
    at.text_input(key="import-target").input(str(pwn))
    button(at, "Import").click().run()
    assert any(f"{pwn} is outside the folders" in e.value for e in at.error), [e.value for e in at.error]
    assert not pwn.exists()
    escape = tmp_path / "link"  # a symlink under the roots that leads out of them, and a "..": resolved first
    escape.symlink_to("/etc")
    dotdot = tmp_path.joinpath(*[".."] * len(tmp_path.parts), "etc", "songsim-pwn")
    for target in (escape / "songsim-pwn", dotdot):
        at.text_input(key="import-target").input(str(target))
        button(at, "Import").click().run()
        assert any("is outside the folders" in e.value for e in at.error), (target, [e.value for e in at.error])
    assert not pwn.exists()
    at.text_input(key="add-folder").input(str(escape))
    button(at, "Add and open").click().run()
    assert any("is outside the folders" in e.value for e in at.error)
    assert all(k.path != Path("/etc") for k in list_catalogues())

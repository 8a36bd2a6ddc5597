"""The registry of known catalogues (songsim.catalogues)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from catalogues import make_small_catalogue

from songsim.catalogues import (
    CatalogueRegistryError,
    add_catalogue,
    describe_catalogue,
    forget_catalogue,
    list_catalogues,
    registry_path,
)
from songsim.config import default_demo_dir


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SONGSIM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_the_demo_is_always_listed_first_without_a_file(home):
    known = list_catalogues()
    assert [(k.name, k.path, k.is_demo) for k in known] == [("demo", default_demo_dir(), True)]
    assert default_demo_dir() == (home / "demo").resolve()
    assert not registry_path().exists()


def test_add_list_forget_round_trip(tmp_path, home):
    first = add_catalogue(tmp_path / "gtzan")
    second = add_catalogue(str(tmp_path / "sub" / ".." / "fma"), name="FMA small")
    assert first.name == "gtzan" and first.added_at.endswith("Z")
    assert second.path == (tmp_path / "fma").resolve() and second.name == "FMA small"
    assert [k.name for k in list_catalogues()] == ["demo", "gtzan", "FMA small"]

    again = add_catalogue(tmp_path / "gtzan")  # idempotent: same entry, same place in the list
    assert again == first
    add_catalogue(tmp_path / "gtzan", name="GTZAN")  # a new name replaces the old one
    assert [k.name for k in list_catalogues()] == ["demo", "GTZAN", "FMA small"]

    stored = json.loads(registry_path().read_text())
    assert stored["version"] == 1 and [e["path"] for e in stored["catalogues"]] == [
        str((tmp_path / "gtzan").resolve()), str((tmp_path / "fma").resolve())
    ]
    assert not [p for p in registry_path().parent.iterdir() if p.name.endswith(".tmp")]  # atomic writes leave nothing

    assert forget_catalogue(tmp_path / "gtzan") is True
    assert forget_catalogue(tmp_path / "gtzan") is False
    assert [k.name for k in list_catalogues()] == ["demo", "FMA small"]


def test_forgetting_never_deletes_the_folder(tmp_path):
    root = make_small_catalogue(tmp_path / "mine", per_genre=1)
    add_catalogue(root)
    forget_catalogue(root)
    assert (root / "tracks.csv").is_file()


def test_the_demo_cannot_be_forgotten_and_adding_it_changes_nothing():
    assert add_catalogue(default_demo_dir()).is_demo
    assert not registry_path().exists()
    with pytest.raises(CatalogueRegistryError, match="always listed"):
        forget_catalogue(default_demo_dir())


def test_concurrent_adds_keep_every_catalogue(tmp_path):
    folders = [tmp_path / f"c{i}" for i in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(add_catalogue, folders))
    assert {k.path for k in list_catalogues()[1:]} == {f.resolve() for f in folders}


def test_an_unreadable_registry_names_the_file_and_the_fix(tmp_path):
    registry_path().parent.mkdir(parents=True)
    registry_path().write_text("{not json")
    with pytest.raises(CatalogueRegistryError, match="delete it") as caught:
        list_catalogues()
    assert str(registry_path()) in str(caught.value)
    with pytest.raises(CatalogueRegistryError):
        add_catalogue(tmp_path / "x")  # never overwrites a file it cannot read
    assert registry_path().read_text() == "{not json"


def test_describe_catalogue(tmp_path):
    assert describe_catalogue(tmp_path / "nowhere") == {"tracks": None, "state": "no folder"}
    assert describe_catalogue(tmp_path) == {"tracks": None, "state": "no tracks.csv"}
    root = make_small_catalogue(tmp_path / "small", per_genre=2)
    assert describe_catalogue(root) == {"tracks": 8, "state": "not built"}

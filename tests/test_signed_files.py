"""No code from data (issue 13, problem 7): a catalogue folder received from someone else never
runs code. Fitted spaces and maps are pickles, so each is signed with this installation's key
(songsim.signed) and refused -- never unpickled -- when it is not; a rebuild replaces it.

Every test plants a pickle whose loading would create a marker file (``os.system("touch …")``)
in a copy of the built catalogue, and shows the marker never appears."""

from __future__ import annotations

import os
import pickle
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from explore_app import APP
from streamlit.testing.v1 import AppTest

from songsim.build import DEFAULT_SPACES, build, is_built, untrusted_files
from songsim.catalogue import load_catalogue
from songsim.errors import SongsimError, UntrustedFileError
from songsim.maps import MAP_PURPOSE, load_map
from songsim.signed import MAGIC, key_path, signing_key, write_signed
from songsim.spaces.store import (
    SPACE_FILE,
    SPACE_PURPOSE,
    built_space_names,
    load_built_space,
    load_current_space,
    load_or_fit_map,
    map_is_current,
    map_path,
    space_dir,
    stored_fit_key,
)
from songsim.stages import DONE, STALE, stage_states

REPO = Path(__file__).resolve().parents[1]
SPACE = "handcrafted"


class RunsCode:
    """Unpickling this runs ``touch MARKER``: what a malicious catalogue would ship."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def malicious_pickle(marker: Path) -> bytes:
    return pickle.dumps(RunsCode(marker))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "pwned"


def space_file(root: Path, name: str = SPACE) -> Path:
    return space_dir(root / ".songsim", name) / SPACE_FILE


def plant_space(root: Path, marker: Path, name: str = SPACE) -> Path:
    path = space_file(root, name)
    path.write_bytes(malicious_pickle(marker))
    return path


def plant_map(root: Path, marker: Path, method: str = "umap") -> Path:
    path = map_path(load_catalogue(root), SPACE, method)
    path.write_bytes(malicious_pickle(marker))
    return path


def states(root: Path) -> dict[str, str]:
    return {s.stage: s.state for s in stage_states(root)}


def test_the_planted_pickle_does_run_code_when_unpickled(tmp_path, marker):
    """The control: what the other tests plant is live -- plain unpickling runs it."""
    pickle.loads(malicious_pickle(marker))
    assert marker.exists()


def test_a_catalogue_built_here_is_signed_and_loads(catalogue_dir):
    assert is_built(catalogue_dir) and untrusted_files(catalogue_dir) == []
    catalogue = load_catalogue(catalogue_dir)
    for name in DEFAULT_SPACES:
        assert space_file(catalogue_dir, name).read_bytes().startswith(MAGIC)
        assert load_built_space(catalogue, name).vectors_.shape[0] == len(catalogue)
    assert map_path(catalogue, SPACE, "umap").read_bytes().startswith(MAGIC)
    assert load_map(map_path(catalogue, SPACE, "umap")).coords_.shape == (len(catalogue), 2)
    assert set(DEFAULT_SPACES) <= set(built_space_names(catalogue))
    assert states(catalogue_dir)[f"space:{SPACE}"] == DONE


def test_a_planted_space_is_never_run_and_a_build_replaces_it(catalogue_dir, marker):
    catalogue = load_catalogue(catalogue_dir)
    plant_space(catalogue_dir, marker)
    with pytest.raises(UntrustedFileError, match="is not signed") as error:
        load_built_space(catalogue, SPACE)
    assert f"python -m songsim build {catalogue_dir} --spaces {SPACE}" in str(error.value)
    assert "could run code" in str(error.value)
    # treated as not built everywhere, without unpickling
    assert load_current_space(space_dir(catalogue.derived_dir, SPACE), stored_fit_key(space_dir(catalogue.derived_dir, SPACE))) is None
    assert not is_built(catalogue_dir) and SPACE not in built_space_names(catalogue)
    assert any(str(space_file(catalogue_dir)) in line for line in untrusted_files(catalogue_dir))
    stage = next(s for s in stage_states(catalogue_dir) if s.stage == f"space:{SPACE}")
    assert stage.state == STALE and "not signed" in stage.detail
    assert not marker.exists()

    report = build(catalogue_dir, spaces=DEFAULT_SPACES, n_jobs=1)
    assert SPACE in report.built and not marker.exists()
    assert is_built(catalogue_dir) and load_built_space(catalogue, SPACE).vectors_.shape[0] == len(catalogue)
    assert states(catalogue_dir)[f"space:{SPACE}"] == DONE


def test_a_planted_map_is_never_run_and_a_build_replaces_it(catalogue_dir, marker):
    catalogue = load_catalogue(catalogue_dir)
    path = plant_map(catalogue_dir, marker)
    with pytest.raises(UntrustedFileError, match="rebuild|Rebuild"):
        load_map(path)
    assert not map_is_current(catalogue, SPACE, "umap") and not is_built(catalogue_dir)
    assert states(catalogue_dir)[f"map:{SPACE}:umap"] == STALE
    assert not marker.exists()

    report = build(catalogue_dir, spaces=DEFAULT_SPACES, n_jobs=1)
    assert f"map:{SPACE}/umap" in report.built and SPACE in report.reused and not marker.exists()
    assert is_built(catalogue_dir) and path.read_bytes().startswith(MAGIC)
    assert load_map(path).coords_.shape == (len(catalogue), 2)


def test_a_planted_map_seen_on_a_page_is_refitted_not_run(catalogue_dir, marker):
    """Where the app asks for a map (load_or_fit_map), one it cannot trust is refitted."""
    catalogue = load_catalogue(catalogue_dir)
    path = plant_map(catalogue_dir, marker, method="pca")
    fitted = load_or_fit_map(catalogue, load_built_space(catalogue, SPACE), "pca")
    assert fitted.coords_.shape == (len(catalogue), 2) and not marker.exists()
    assert path.read_bytes().startswith(MAGIC)


def test_cli_query_refuses_a_planted_space_with_a_clear_message(catalogue_dir, marker):
    plant_space(catalogue_dir, marker)
    result = subprocess.run(
        [sys.executable, "-m", "songsim", "query", str(catalogue_dir), "--track", "pluck-01", "--space", SPACE],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "is not signed" in result.stderr
    assert f"python -m songsim build {catalogue_dir}" in result.stderr
    assert not marker.exists()


def test_the_app_never_runs_a_planted_space_and_rebuilds_it(catalogue_dir, marker, monkeypatch):
    """The owner opens a catalogue holding a planted space: the app says it will not open it,
    rebuilds it from the features, and Explore works; the planted code never ran."""
    plant_space(catalogue_dir, marker)
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(catalogue_dir))
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    assert not at.exception, at.exception
    warning = "\n".join(w.value for w in at.warning)
    assert "not written by this installation" in warning and "rebuilt" in warning and SPACE_FILE in warning
    assert len(at.get("audio")) == 6  # Explore: the query and its top-5
    assert not marker.exists()
    assert is_built(catalogue_dir) and space_file(catalogue_dir).read_bytes().startswith(MAGIC)


def test_explore_shows_a_refused_space_as_an_error_not_a_traceback(catalogue_dir, marker, monkeypatch):
    """A space that passes the cheap checks but is refused at load time (a file changed between
    the two; here the checks are stubbed) is an st.error that says to rebuild, never a traceback."""
    plant_space(catalogue_dir, marker, name="random")
    monkeypatch.setattr("songsim.build.untrusted_files", lambda *a, **k: [])
    monkeypatch.setattr("songsim.spaces.store.trust_problem", lambda *a, **k: None)
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(catalogue_dir))
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["space"] = "random"
    at.run()
    assert not at.exception, at.exception
    errors = "\n".join(e.value for e in at.error)
    assert "is not signed" in errors and "python -m songsim build" in errors
    assert not marker.exists()


# ---- the signature itself ------------------------------------------------------------------


def test_a_file_signed_with_another_installations_key_is_refused(catalogue_dir, marker, tmp_path, monkeypatch):
    path = space_file(catalogue_dir)
    monkeypatch.setenv("SONGSIM_KEY_FILE", str(tmp_path / "elsewhere" / "signing.key"))
    write_signed(path, malicious_pickle(marker), purpose=SPACE_PURPOSE)  # the sender signs with their key
    monkeypatch.undo()
    with pytest.raises(UntrustedFileError, match="another songsim installation"):
        load_built_space(load_catalogue(catalogue_dir), SPACE)
    assert not marker.exists()


def test_a_changed_or_misused_signed_file_is_refused(catalogue_dir, marker):
    path = space_file(catalogue_dir)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one byte changed after signing
    path.write_bytes(bytes(data))
    with pytest.raises(UntrustedFileError, match="does not match its signature"):
        load_built_space(load_catalogue(catalogue_dir), SPACE)
    catalogue = load_catalogue(catalogue_dir)
    write_signed(path, malicious_pickle(marker), purpose=MAP_PURPOSE)  # signed, but as a map, not a space
    with pytest.raises(UntrustedFileError, match="does not match its signature"):
        load_built_space(catalogue, SPACE)
    assert not marker.exists()


def test_the_key_is_private_and_outside_the_catalogue(catalogue_dir, tmp_path, monkeypatch):
    path = key_path()
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.is_relative_to(catalogue_dir.resolve())
    # created on first use, 0600, in the user's config folder unless $SONGSIM_KEY_FILE says otherwise
    monkeypatch.delenv("SONGSIM_KEY_FILE")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert key_path() == (tmp_path / "config" / "songsim" / "signing.key").resolve()
    key = signing_key()
    assert len(key) == 32 and stat.S_IMODE(key_path().stat().st_mode) == 0o600 and signing_key() == key
    # a key others can read is refused, as is one inside the catalogue it would vouch for
    key_path().chmod(0o644)
    with pytest.raises(SongsimError, match="chmod 600"):
        signing_key()
    monkeypatch.setenv("SONGSIM_KEY_FILE", str(catalogue_dir / "signing.key"))
    with pytest.raises(SongsimError, match="inside the catalogue"):
        load_built_space(load_catalogue(catalogue_dir), SPACE)

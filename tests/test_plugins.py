"""Plug-in spaces: installed packages declaring spaces in the ``songsim.spaces`` entry-point
group are discovered, listed with their package, built, queried with an upload, compared in a
study and reported; broken ones are reported by name and break nothing.

The packages are tests/plugins/songsim-toy-space (the README's plug-in) and
tests/plugins/songsim-toy-broken (one entry point per problem). They are installed with pip
into a temporary folder (no network: setuptools builds them in place) and used by
``python -m songsim`` subprocesses with that folder on ``PYTHONPATH``, as a researcher's
environment would have them; the Models page test discovers them in this process instead, and
restores the registry afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from songsim.config import N_MELS
from songsim.errors import PluginError, SpaceOutputError
from songsim.neighbours import PRECOMPUTED
from songsim.spaces import base as spaces_base
from songsim.spaces import plugins
from songsim.spaces.base import Space, checked_vectors

REPO = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).resolve().parent / "plugins"
APP = str(REPO / "app.py")
COMMAND_TIMEOUT_S = 120
#: entry points of songsim-toy-broken that discovery refuses, and a word of each one's problem
REFUSED = {
    "toy-import-error": "failed to import: ImportError",
    "toy-not-a-space": "not a subclass of songsim.spaces.base.Space",
    "toy-no-inputs": "`description` is missing",
    "toy-clash": "'handcrafted', the name of a built-in space",
}
#: the plug-in spaces that load (the last two give vectors of the wrong shape when used)
LOADED = {"toy-mel-mean": ("songsim-toy-space", "0.1.0"), "toy-wrong-fit": ("songsim-toy-broken", "0.0.1"),
          "toy-wrong-upload": ("songsim-toy-broken", "0.0.1")}  # fmt: skip


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """A folder holding the two plug-in packages, installed as pip installs them (copied
    first, so that the build leaves nothing in tests/plugins)."""
    work = tmp_path_factory.mktemp("plugins")
    sources = [shutil.copytree(PLUGINS / name, work / name) for name in ("songsim-toy-space", "songsim-toy-broken")]
    site = work / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--target", str(site), *map(str, sources)],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return site


def songsim(site: Path, *args: object) -> subprocess.CompletedProcess:
    """``python -m songsim ARGS`` in a fresh process that has the plug-ins installed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run(
        [sys.executable, "-m", "songsim", *map(str, args)], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, cwd=REPO, env=env
    )


@pytest.fixture(scope="module")
def plugin_catalogue(plugin_site, built_catalogue, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A copy of the built catalogue with the loadable plug-in spaces built into it (PCA maps
    only), and how that build ended."""
    root = Path(shutil.copytree(built_catalogue, tmp_path_factory.mktemp("plugin-catalogue") / "catalogue"))
    built = songsim(plugin_site, "build", root, "--spaces", ",".join(LOADED), "--maps", "pca", "--jobs", "1")
    return root, built


def test_discovery_lists_each_plugin_with_its_package_and_names_each_broken_one(plugin_site, built_catalogue):
    done = songsim(plugin_site, "spaces", built_catalogue, "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert {name for name, row in rows.items() if row["origin"] == "plug-in"} == set(LOADED)
    for name, (package, version) in LOADED.items():
        assert (rows[name]["package"], rows[name]["package_version"]) == (package, version)
        assert rows[name]["entry_point"].startswith(f"{name} = ")
    toy = rows["toy-mel-mean"]
    assert toy["inputs"] == ["mel"] and toy["embeds_uploads"] and toy["state"] == "missing"
    handcrafted = rows["handcrafted"]  # the clashing plug-in registered itself on import: undone
    assert handcrafted["origin"] == "built-in" and handcrafted["package"] is None and handcrafted["state"] == "done"
    assert handcrafted["description"].startswith("librosa statistics")

    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: plug-in not loaded:")]
    assert len(warnings) == len(REFUSED), done.stderr
    for entry_point, problem in REFUSED.items():
        line = next(line for line in warnings if f"Plug-in {entry_point!r}" in line)
        assert "package songsim-toy-broken 0.0.1" in line and problem in line, line
    text = songsim(plugin_site, "spaces")
    assert text.returncode == 0 and re.search(r"toy-mel-mean +plug-in .* from songsim-toy-space 0\.1\.0", text.stdout)


def test_an_unloaded_plugin_is_named_with_its_problem_when_asked_for(plugin_site, built_catalogue):
    done = songsim(plugin_site, "build", built_catalogue, "--spaces", "toy-import-error")
    assert done.returncode == 2
    assert "error: Space 'toy-import-error' is an installed plug-in that songsim could not load" in done.stderr
    assert "pip uninstall songsim-toy-broken" in done.stderr and "Traceback" not in done.stderr


def test_a_build_fits_the_plugin_and_skips_the_one_with_wrong_vectors(plugin_catalogue):
    root, built = plugin_catalogue
    assert built.returncode == 0, built.stderr
    report = json.loads(built.stdout)
    assert {"toy-mel-mean", "toy-wrong-upload", "map:toy-mel-mean/pca"} <= set(report["built"])
    reason = report["skipped"]["toy-wrong-fit"]
    assert reason.startswith("Space 'toy-wrong-fit' (plug-in from package songsim-toy-broken 0.0.1): its vectors_ after fit() has shape (24,)")
    assert "fix WrongFitShapeSpace.fit in package songsim-toy-broken" in reason
    assert f"skipped toy-wrong-fit: {reason}" in built.stderr
    meta = json.loads((root / ".songsim" / "spaces" / "toy-mel-mean" / "meta.json").read_text())
    assert meta["dim"] == 2 * N_MELS and "songsim-toy-space-0.1.0" in meta["fit_key"]  # a new release refits it
    assert not (root / ".songsim" / "spaces" / "toy-wrong-fit" / "space.joblib").exists()


def test_an_upload_is_embedded_through_the_plugin_and_a_wrong_transform_is_a_clear_error(plugin_site, plugin_catalogue, tone_wav):
    root, _ = plugin_catalogue
    done = songsim(plugin_site, "query", root, "--audio", tone_wav, "--space", "toy-mel-mean", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["space"] == "toy-mel-mean" and found["query"]["audio"] == str(tone_wav) and len(found["neighbours"]) == 5

    wrong = songsim(plugin_site, "query", root, "--audio", tone_wav, "--space", "toy-wrong-upload", "--json")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert wrong.stderr.startswith("error: Space 'toy-wrong-upload' (plug-in from package songsim-toy-broken 0.0.1): "
                                   "transform() has shape (1, 9), expected (1, 8)")  # fmt: skip


def test_a_study_compares_the_plugin_with_a_built_in_space_through_rating_and_report(plugin_site, plugin_catalogue):
    root, _ = plugin_catalogue
    created = songsim(plugin_site, "study", "create", root, "--name", "plug-in-pilot", "--spaces", "toy-mel-mean,handcrafted",
                      "--queries", "4", "--k", "3", "--raters-per-pair", "1")  # fmt: skip
    assert created.returncode == 0, created.stderr
    shown = json.loads(songsim(plugin_site, "study", "show", root, "--name", "plug-in-pilot", "--json").stdout)
    assert shown["spaces"] == ["toy-mel-mean", "handcrafted"]
    query = shown["queries"][0]
    assert len(query["runs"]["toy-mel-mean"]) == 3
    for broad, candidate in zip((2, 0), query["pool"]):
        rated = songsim(plugin_site, "rate", root, "--study", "plug-in-pilot", "--rater", "ada", "--query", query["query_id"],
                        "--candidate", candidate, "--broad", broad)  # fmt: skip
        assert rated.returncode == 0, rated.stderr
    reported = songsim(plugin_site, "report", root, "--study", "plug-in-pilot", "--json")
    assert reported.returncode == 0, reported.stderr
    spaces = json.loads(reported.stdout)["spaces"]
    assert set(spaces) == {"toy-mel-mean", "handcrafted"}
    assert spaces["toy-mel-mean"]["n_queries"]["ndcg@3"] == 1 and 0.0 <= spaces["toy-mel-mean"]["ndcg@3"] <= 1.0


@pytest.fixture
def discovered_here(plugin_site, monkeypatch) -> list[plugins.PluginProblem]:
    """The plug-ins discovered in this process; the registry is restored after the test."""
    for registry in ("_SPACE_TYPES", "_PLUGIN_SOURCES", "_UNLOADED_PLUGINS"):
        monkeypatch.setattr(spaces_base, registry, dict(getattr(spaces_base, registry)))
    monkeypatch.setattr(plugins, "_PROBLEMS", [])
    monkeypatch.syspath_prepend(str(plugin_site))
    return plugins.discover_plugins()


def test_the_models_page_lists_the_plugin_with_its_package_and_warns_of_the_broken_ones(discovered_here, built_catalogue, monkeypatch):
    assert {p.entry_point.partition(" = ")[0] for p in discovered_here} == set(REFUSED)
    assert plugins.plugin_problems() == discovered_here
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(built_catalogue))
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value.set_index("space")
    assert table.loc["toy-mel-mean", "origin"] == "plug-in" and table.loc["toy-mel-mean", "package"] == "songsim-toy-space 0.1.0"
    assert table.loc["toy-mel-mean", "state"] == "missing"
    assert table.loc["handcrafted", "origin"] == "built-in" and table.loc["handcrafted", "state"] == "done"
    warnings = [w.value for w in at.warning if w.value.startswith("Plug-in not loaded:")]
    for entry_point in REFUSED:
        assert any(f"Plug-in {entry_point!r}" in w and "songsim-toy-broken 0.0.1" in w for w in warnings), entry_point
    assert {"handcrafted", "random"} <= set(at.dataframe[1].value.columns)  # the built spaces are still scored
    at.session_state["models_build_skipped"] = {"toy-wrong-fit": "Space 'toy-wrong-fit' (plug-in from package …): …"}
    at.run()  # as after a build that skipped a space: its reason, once
    assert any(w.value.startswith("Not built: toy-wrong-fit — Space 'toy-wrong-fit' (plug-in") for w in at.warning)
    assert not any(w.value.startswith("Not built:") for w in at.run().warning)


def test_discovering_again_keeps_what_is_registered(discovered_here):
    assert plugins.discover_plugins() == discovered_here
    assert spaces_base.plugin_source("toy-mel-mean").package == "songsim-toy-space"


class _BuiltInLike(Space):
    name = "handcrafted"  # not a plug-in: the error says songsim's own space has a bug
    description = "test"
    inputs = ("key",)

    def fit(self, inputs, *, labels, seed=0):
        return self

    def transform(self, inputs):
        return np.zeros((1, 1), dtype=np.float32)


@pytest.mark.parametrize(
    ("vectors", "problem"),
    [
        (None, "is NoneType, not a numeric array"),
        (np.zeros(3), "has shape (3,), expected (3, dim)"),
        (np.zeros((2, 4)), "has shape (2, 4), expected (3, dim)"),
        (np.zeros((3, 0)), "has shape (3, 0), expected (3, dim)"),
        (np.zeros((3, 4), dtype=int), "has dtype int64, expected a float dtype"),
        (np.array([[0.0, np.nan], [1.0, np.inf], [0.0, 0.0]]), "holds 2 NaN or infinite values"),
    ],
)
def test_vectors_of_the_wrong_shape_type_or_values_are_refused(vectors, problem):
    with pytest.raises(SpaceOutputError) as raised:
        checked_vectors(_BuiltInLike(), vectors, n_songs=3, method="fit")
    assert f"Space 'handcrafted': its vectors_ after fit() {problem}" in str(raised.value)
    assert "a bug in songsim's own space" in str(raised.value)


def test_good_vectors_come_back_as_float32_and_transform_must_keep_the_dim():
    checked = checked_vectors(_BuiltInLike, np.ones((3, 4)), n_songs=3, method="fit")
    assert checked.dtype == np.float32 and checked.shape == (3, 4)
    with pytest.raises(SpaceOutputError, match=r"transform\(\) has shape \(1, 5\), expected \(1, 4\)"):
        checked_vectors(_BuiltInLike, np.ones((1, 5), dtype=np.float32), n_songs=1, dim=4, method="transform")


class _ToyDistances(Space):
    """A plug-in space that gives distances, not vectors: L2 between handcrafted features."""

    name = "toy-distances"
    description = "L2 distances between the songs' handcrafted features"
    inputs = ("handcrafted",)
    metric = PRECOMPUTED

    def fit(self, inputs, *, labels, seed=0):
        self.features_ = np.asarray(inputs["handcrafted"], dtype=np.float32)
        self.vectors_ = self.transform(inputs)  # (n_tracks, n_tracks): row i = from track i
        return self

    def transform(self, inputs):
        """m songs → (m, n_tracks) float32 distances to the catalogue's tracks."""
        x = np.asarray(inputs["handcrafted"], dtype=np.float32)
        return np.linalg.norm(x[:, None, :] - self.features_[None, :, :], axis=2)


def _declared(metric: str) -> type[Space]:
    return type("Declared", (_ToyDistances,), {"metric": metric})


@pytest.mark.parametrize("metric", ["cosine", "euclidean", PRECOMPUTED])
def test_a_plugin_may_declare_each_vector_metric_or_precomputed_distances(metric):
    source = spaces_base.PluginSource("songsim-toy-distances", "0.1.0", "toy-distances = toy:Declared")
    assert plugins._checked_space_class(_declared(metric), source).metric == metric


def test_an_unknown_metric_is_refused_naming_the_ones_allowed():
    source = spaces_base.PluginSource("songsim-toy-distances", "0.1.0", "toy-distances = toy:Declared")
    with pytest.raises(PluginError, match=r"`metric` is 'manhattan'; use one of cosine, euclidean, precomputed"):
        plugins._checked_space_class(_declared("manhattan"), source)


def test_a_distance_space_passes_the_vectors_check_with_its_square_matrix():
    space = _ToyDistances().fit({"handcrafted": np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])}, labels={})
    checked = checked_vectors(space, space.vectors_, n_songs=3, method="fit")
    np.testing.assert_array_equal(checked, [[0, 5, 4], [5, 0, 3], [4, 3, 0]])
    upload = space.transform({"handcrafted": np.array([[3.0, 0.0]])})
    np.testing.assert_array_equal(checked_vectors(space, upload, n_songs=1, dim=3, method="transform"), [[3, 4, 5]])


def test_the_readme_shows_the_tested_plugin():
    readme = (REPO / "README.md").read_text()
    for path, language in (("pyproject.toml", "toml"), ("songsim_toy_space.py", "python")):
        shown = re.search(rf"```{language}\n# songsim-toy-space/{re.escape(path)}\n(.*?)```", readme, re.S).group(1)
        assert shown == (PLUGINS / "songsim-toy-space" / path).read_text(), path

"""The package's shape: no import cycle, a registry that is complete whatever is imported
first, and ``python -m songsim spaces`` describing every space."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from songsim.cli import main
from songsim.spaces import space_names, space_type

PACKAGE = Path(__file__).resolve().parents[1] / "songsim"
BUILT_IN_SPACES = {
    "handcrafted", "random", "genre-cnn", "emotion-cnn", "metadata", "fusion-ae", "ae-2d", "triplet",
    "spectrogram-pca", "spectrogram-l2", "wavenet", "chroma-lstm", "ali", "musicnn", "musly",
    "musicnn-triplet",
}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The songsim modules ``path`` imports, at the top or inside functions (a package's
    ``__init__`` run by importing a submodule is not counted: it is the package's own)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return {m for m in found if m in modules and m != name}


def _first_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> list[str] | None:
        stack.append(module)
        for target in sorted(graph[module]):
            if target in stack:
                return stack[stack.index(target):] + [target]
            if target not in done and (cycle := visit(target, stack)):
                return cycle
        done.add(stack.pop())
        return None

    for module in sorted(graph):
        if module not in done and (cycle := visit(module, [])):
            return cycle
    return None


def test_no_import_cycle_in_songsim():
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: _imports(path, name, set(paths)) for name, path in paths.items()}
    assert "songsim.spaces.store" in graph["songsim.build"]  # the walk sees imports at all
    assert _first_cycle(graph) is None, " -> ".join(_first_cycle(graph))


def test_the_cycle_check_finds_a_cycle():
    assert _first_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize(
    "first", ["songsim.spaces.base", "songsim.spaces.store", "songsim.query", "songsim.build", "songsim.evaluate", "songsim.maps"]
)
def test_the_registries_are_complete_whatever_is_imported_first(first):
    probe = (
        f"import {first}; from songsim.spaces.base import space_names; from songsim.maps import map_methods; "
        "import json; print(json.dumps([space_names(), list(map_methods())]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr
    spaces, maps = json.loads(done.stdout)
    assert set(spaces) == BUILT_IN_SPACES
    assert maps == ["umap", "tsne", "pca", "ae2d"]  # the Explore page offers them in this order


def test_spaces_json_describes_every_space(built_catalogue, capsys):
    assert main(["spaces", str(built_catalogue), "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == BUILT_IN_SPACES
    assert list(rows) == space_names()
    wavenet = rows["wavenet"]
    assert wavenet["metric"] == "euclidean" and wavenet["trainable"] and wavenet["inputs"] == ["mel"]
    assert wavenet["origin"] == "built-in" and wavenet["state"] == "missing" and wavenet["dim"] is None
    assert rows["handcrafted"]["state"] == "done" and rows["handcrafted"]["dim"] > 0 and not rows["handcrafted"]["trainable"]
    assert rows["metadata"]["required_labels"][0] == "danceability"
    assert rows["ae-2d"]["inputs"] == ["space:triplet"] and rows["ae-2d"]["required_labels"] == ["genre"]
    for name, row in rows.items():
        assert row["description"] == space_type(name).description
        assert set(row) >= {"name", "description", "inputs", "required_labels", "metric", "trainable", "embeds_uploads", "origin"}


def test_spaces_without_a_catalogue_lists_them_without_dimensions(capsys):
    assert main(["spaces", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["name"] for row in rows} == BUILT_IN_SPACES and not any("dim" in row for row in rows)
    assert main(["spaces"]) == 0
    assert "wavenet" in capsys.readouterr().out


def test_the_readme_example_space_builds_and_is_searched(built_catalogue, tmp_path, monkeypatch):
    import re
    import shutil
    import types

    from songsim.build import build
    from songsim.catalogue import load_catalogue
    from songsim.query import search
    from songsim.spaces import base as spaces_base
    from songsim.stages import space_states

    readme = (PACKAGE.parent / "README.md").read_text()
    code = re.search(r"```python\n# songsim/spaces/chroma_mean.py\n(.*?)```", readme, re.S).group(1)
    monkeypatch.setattr(spaces_base, "_SPACE_TYPES", dict(spaces_base._SPACE_TYPES))
    module = types.ModuleType("readme_chroma_mean")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # a fitted space is pickled by module path
    exec(compile(code, "README.md", "exec"), module.__dict__)
    assert "chroma-mean" in space_names()
    root = Path(shutil.copytree(built_catalogue, tmp_path / "copy"))
    report = build(root, spaces=["chroma-mean"], map_methods=("pca",), n_jobs=1)
    assert "chroma-mean" in report.built
    assert {row["space"]: row["state"] for row in space_states(root)}["chroma-mean"] == "done"
    catalogue = load_catalogue(root)
    found = search(catalogue, "chroma-mean", track_id=catalogue.track_ids[0], k=3)
    assert found.metric == "cosine" and len(found.track_ids(catalogue)) == 3

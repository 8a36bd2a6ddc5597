"""The built wheel is the whole package: installed into a fresh environment outside the
checkout, it serves a learned space from a built catalogue."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from songsim.spaces import space_names

REPO = Path(__file__).resolve().parents[1]

#: run by the installed songsim, from a folder outside the checkout
SERVE_A_LEARNED_SPACE = """
import json, sys
import songsim
from songsim.catalogue import load_catalogue
from songsim.query import search
from songsim.spaces import space_names

catalogue = load_catalogue(sys.argv[1])
found = search(catalogue, "genre-cnn", track_id=catalogue.track_ids[0], k=3)
print(json.dumps({"module": songsim.__file__, "spaces": len(space_names()), "top": found.track_ids(catalogue)}))
"""


def _subpackages() -> set[str]:
    return {str(p.parent.relative_to(REPO)) for p in (REPO / "songsim").rglob("__init__.py")}


@pytest.mark.timeout(600)
def test_the_wheel_installs_into_a_fresh_venv_and_serves_a_learned_space(trained_catalogue, tmp_path):
    source = tmp_path / "source"  # built from a copy: the checkout gets no build/ folder
    shutil.copytree(REPO / "songsim", source / "songsim", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", source)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(source)],
        check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("songsim-*.whl")
    packaged = {str(Path(name).parent) for name in zipfile.ZipFile(wheel).namelist() if name.endswith("__init__.py")}
    assert packaged == _subpackages()

    venv = tmp_path / "venv"  # the stack comes from this interpreter's site-packages; songsim only from the wheel
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    served = subprocess.run(
        [str(python), "-c", SERVE_A_LEARNED_SPACE, str(trained_catalogue)],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr
    result = json.loads(served.stdout.strip().splitlines()[-1])
    assert Path(result["module"]).is_relative_to(venv)
    assert result["spaces"] == len(space_names()) and len(result["top"]) == 3

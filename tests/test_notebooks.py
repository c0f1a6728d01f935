"""Conventions of the collection: setup cell, Colab badges, stripped outputs, docstrings."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from utils import repository

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPO = repository.REPOSITORY


def cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text())["cells"]


def src(cell: dict) -> str:
    s = cell["source"]
    return s if isinstance(s, str) else "".join(s)


def test_there_are_notebooks_with_numbered_names():
    assert NOTEBOOKS, "no notebooks found"
    for nb in NOTEBOOKS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", nb.name), nb.name
    numbers = [nb.name[:2] for nb in NOTEBOOKS]
    assert len(numbers) == len(set(numbers)), "two notebooks share a number"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_first_cell_is_title_with_matching_colab_badge(nb):
    first = cells(nb)[0]
    assert first["cell_type"] == "markdown"
    text = src(first)
    assert text.startswith("# "), "first markdown cell must start with the title"
    urls = re.findall(r"https://colab\.research\.google\.com/github/[^)\s]+", text)
    assert urls, "no Colab badge"
    expected = f"https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{nb.name}"
    assert urls == [expected]


def test_setup_cell_is_identical_everywhere_and_defines_root():
    setups = {}
    for nb in NOTEBOOKS:
        code = [c for c in cells(nb) if c["cell_type"] == "code"]
        setups[nb.name] = src(code[0])
    assert len(set(setups.values())) == 1, f"setup cells differ: {sorted(setups)}"
    setup = next(iter(setups.values()))
    assert f'REPO = "{REPO}"' in setup
    for name in ("ROOT", "DATA_DIR", "sys.path.insert(0"):
        assert name in setup
    assert "pip install" not in setup.split("google.colab")[0]
    assert "torch" not in re.findall(r"pip\", \"install\", \"-q\"(.*)\]", setup)[0]


def test_colab_path_clones_the_repository_url_and_imports_utils(tmp_path):
    """Simulate Colab: the module Colab sets, a working directory outside the repository, and
    the repository URL (VQVAE_NOTEBOOKS_URL) pointing at a local bare clone. The setup cell
    must clone it, put the clone on sys.path and let a fresh interpreter import utils."""
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "--bare", "-q", str(ROOT), str(bare)], check=True)
    work = tmp_path / "content"
    work.mkdir()
    setup = src([c for c in cells(NOTEBOOKS[0]) if c["cell_type"] == "code"][0])
    script = ("import sys, types\n"
              "sys.modules['google.colab'] = types.ModuleType('google.colab')\n"
              + setup + "\nimport utils.audio\n"
              "print('ROOT', ROOT)\nprint('UTILS', utils.audio.__file__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["VQVAE_NOTEBOOKS_URL"] = bare.as_uri()
    for _ in range(2):                                   # the second run reuses the clone
        out = subprocess.run([sys.executable, "-c", script], cwd=work, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        clone = work / REPO.split("/")[1]
        assert f"ROOT {clone}" in out.stdout
        assert f"UTILS {clone / 'utils' / 'audio.py'}" in out.stdout
    assert (clone / "data" / "pretrained").is_dir()


def test_setup_cell_finds_the_root_from_a_subfolder(tmp_path, monkeypatch):
    setup = src([c for c in cells(NOTEBOOKS[0]) if c["cell_type"] == "code"][0])
    monkeypatch.chdir(ROOT / "notebooks")
    ns: dict = {}
    exec(compile(setup, "setup", "exec"), ns)
    assert ns["ROOT"] == ROOT and ns["DATA_DIR"] == ROOT / "data"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs_and_with_a_parameters_cell(nb):
    data = json.loads(nb.read_text())
    for c in data["cells"]:
        if c["cell_type"] == "code":
            assert c.get("outputs", []) == [] and c.get("execution_count") is None
    assert data["metadata"]["kernelspec"]["name"] == "python3"
    tags = [t for c in data["cells"] for t in c.get("metadata", {}).get("tags", [])]
    assert "parameters" in tags


def _public_defs(path: Path):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            yield node


def test_every_public_utils_function_names_an_existing_notebook():
    """Google docstrings with a 'Notebook:' back-reference (the libfmp convention); the named
    notebook must exist."""
    existing = {p.stem for p in NOTEBOOKS}
    missing = []
    for path in sorted((ROOT / "utils").rglob("*.py")):
        for node in _public_defs(path):
            ref = re.search(r"Notebook: notebooks/(\w+)\.ipynb", ast.get_docstring(node) or "")
            if ref is None:
                missing.append(f"{path.relative_to(ROOT)}:{node.name} has no 'Notebook:' line")
            elif ref.group(1) not in existing:
                missing.append(f"{path.relative_to(ROOT)}:{node.name} -> {ref.group(1)}")
    assert not missing, "\n".join(missing)

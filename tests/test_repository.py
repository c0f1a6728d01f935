"""The repository's address is defined once (utils/repository.py): every Colab badge and setup
cell is generated from it, and the README links no repository that is not published (issue:
a Colab badge pointing at a repository that does not exist, written out in 25 places)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from utils import repository

ROOT = Path(__file__).resolve().parents[1]


def test_every_badge_and_setup_cell_names_the_one_repository():
    assert repository.stale_places(ROOT) == []


def test_the_address_is_written_out_only_where_it_is_generated():
    places = []
    for path in ROOT.rglob("*"):
        if (path.suffix in {".py", ".md", ".ipynb", ".toml", ".txt", ".html", ".cfg"}
                and ".git" not in path.parts and "runs" not in path.parts
                and path.is_file() and repository.REPOSITORY in path.read_text(errors="ignore")):
            places.append(path.relative_to(ROOT).as_posix())
    others = [p for p in places if not p.startswith("notebooks/")]
    assert others == ["README.md", "utils/repository.py"] or others == ["utils/repository.py"]


def test_a_fork_changes_one_line_and_write_regenerates_every_place(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    monkeypatch.setattr(repository, "REPOSITORY", "someone/a-fork")
    stale = repository.stale_places(tmp_path)
    n = len(list((tmp_path / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    assert len(stale) == 2 * n  # each notebook's badge and setup cell
    assert len(repository.write_places(tmp_path)) == n
    assert repository.stale_places(tmp_path) == []
    first = json.loads(next((tmp_path / "notebooks").glob("01_*.ipynb")).read_text())
    assert "github/someone/a-fork/blob/main/notebooks/01_" in "".join(first["cells"][0]["source"])
    assert repository.main(["--root", str(tmp_path)]) == 0


def test_an_unpublished_repository_is_not_linked_from_the_readme(tmp_path, monkeypatch):
    (tmp_path / "README.md").write_text(
        f"[open](https://github.com/{repository.REPOSITORY})\n")
    monkeypatch.setattr(repository, "PUBLISHED", False)
    assert repository.stale_places(tmp_path) == [
        "README.md: links the repository, which is not published yet"]
    monkeypatch.setattr(repository, "PUBLISHED", True)
    assert repository.stale_places(tmp_path) == []

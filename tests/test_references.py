"""Nothing tracked in the repository cites a file that is not in the repository.

A reader has the repository and nothing else, so the README, docstrings, notebooks and data
notes must point only at files they can open. The scan looks at every tracked text file for
(1) relative Markdown links ``[text](path)`` and (2) mentions of ``*.md`` documents, and
resolves each against the repository root and the mentioning file's folder. The design notes
the project was planned from (outside the repository) are named explicitly, so a citation of
them fails even when written without a suffix.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".md", ".py", ".ipynb", ".json", ".toml", ".txt", ".cfg", ".yml", ".yaml", ""}
# Notes that exist only on the developers' machines (names split so this file does not match).
OUTSIDE = ("DESIGN" + ".md", "research" + "/", "seed_repositories", "notebook_conventions",
           "vq_anchors", "complex_anchors")
LINK = re.compile(r"\]\(([^)\s]*[./][^)\s]*)\)")  # a Markdown link whose target is a path
MD_MENTION = re.compile(r"(?<![\w/.:-])((?:\.\./|\./)?[\w./-]*[\w-]\.md)\b")


def tracked_files(root: Path = ROOT) -> list[Path]:
    """Tracked files (``git ls-files``), or every file when the tree is not a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.split("\n")
        files = [root / f for f in out if f]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]
    return [f for f in files if f.suffix in TEXT_SUFFIXES and f.is_file()]


def dangling(text: str, where: Path, root: Path = ROOT) -> list[str]:
    """References in ``text`` (of the file ``where``) to files that are not in ``root``."""
    bad = [name for name in OUTSIDE if name in text]
    links = LINK.findall(text) if where.suffix in (".md", ".ipynb") else []
    targets = [t for t in links if not re.match(r"[a-z]+:|#", t)]
    targets += MD_MENTION.findall(text)
    for target in targets:
        path = target.split("#")[0]
        if not path:
            continue
        candidates = [where.parent / path, root / path]
        if not any(c.resolve().exists() and c.resolve().is_relative_to(root) for c in candidates):
            bad.append(target)
    return bad


def test_the_scan_finds_what_it_must(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "metrics.md").write_text("x")
    here = tmp_path / "README.md"
    assert dangling("see [metrics](docs/metrics.md) and docs/metrics.md", here, tmp_path) == []
    assert dangling("see [it](https://example.org/a.md) and [top](#layout)", here, tmp_path) == []
    assert dangling("as defined in " + "DESIGN" + ".md", here, tmp_path) == ["DESIGN.md"] * 2
    assert dangling("see [x](docs/missing.md)", here, tmp_path) == ["docs/missing.md"] * 2
    assert dangling("the survey (" + "research" + "/x.md)", here, tmp_path)
    assert dangling("../outside/README.md", here, tmp_path) == ["../outside/README.md"]


def test_no_tracked_file_cites_a_file_outside_the_repository():
    this = Path(__file__).resolve()
    problems = {}
    for f in tracked_files():
        if f.resolve() == this:
            continue
        bad = dangling(f.read_text(encoding="utf-8", errors="replace"), f)
        if bad:
            problems[str(f.relative_to(ROOT))] = sorted(set(bad))
    assert not problems, f"references to files not in the repository: {problems}"

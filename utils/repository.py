"""Where the collection lives: its repository's address, defined once.

The Colab badge in every notebook's title and the ``REPO = "..."`` line of the shared setup
cell (which clones the repository on Colab) are generated from :data:`REPOSITORY`; a test
checks them against it. A fork changes the one line below and runs
``python -m utils.repository --write``, which rewrites every badge and setup cell.

The public address is not fixed yet (:data:`PUBLISHED` is ``False``): until it is, the README
says so and links no repository; the badges and the setup cell carry the reserved address.

Notebook: notebooks/01_signal_processing.ipynb
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from utils import options

__all__ = ["REPOSITORY", "PUBLISHED", "colab_url", "badge", "setup_line", "stale_places",
           "write_places", "main"]

#: ``owner/name`` on GitHub: the one line a fork changes.
REPOSITORY = "sound-reconstruction/vqvae-complex-notebooks"
#: Whether the repository is public at :data:`REPOSITORY` (the README links it only then).
PUBLISHED = False

_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
_COLAB = re.compile(r"https://colab\.research\.google\.com/github/([^/\s)]+/[^/\s)]+)/blob/"
                    r"main/notebooks/([^)\s]+\.ipynb)")
_SETUP = re.compile(r'^REPO = "([^"]*)"$', re.M)


def colab_url(notebook: str) -> str:
    """The Colab address of a notebook of the collection (``"01_signal_processing.ipynb"``).

    Notebook: notebooks/01_signal_processing.ipynb
    """
    return (f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/"
            f"{Path(notebook).name}")


def badge(notebook: str) -> str:
    """The Markdown of a notebook's "Open In Colab" badge.

    Notebook: notebooks/01_signal_processing.ipynb
    """
    return f"[![Open In Colab]({_BADGE_IMAGE})]({colab_url(notebook)})"


def setup_line() -> str:
    """The setup cell's line that names the repository it clones on Colab.

    Notebook: notebooks/01_signal_processing.ipynb
    """
    return f'REPO = "{REPOSITORY}"'


def _source(cell: dict) -> str:
    s = cell["source"]
    return s if isinstance(s, str) else "".join(s)


def _notebooks(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def stale_places(root: str | Path) -> list[str]:
    """Every badge or setup cell under ``root/notebooks`` that does not match
    :data:`REPOSITORY` (an empty list when all do), and a README that links a repository
    that is not published.

    Notebook: notebooks/01_signal_processing.ipynb
    """
    root = Path(root)
    found = []
    for nb in _notebooks(root):
        cells = json.loads(nb.read_text())["cells"]
        title = _source(cells[0]) if cells else ""
        urls = _COLAB.findall(title)
        if [(r, n) for r, n in urls] != [(REPOSITORY, nb.name)]:
            found.append(f"{nb.relative_to(root)}: title badge {urls or 'missing'}")
        code = next((c for c in cells if c["cell_type"] == "code"), None)
        repos = _SETUP.findall(_source(code)) if code else []
        if repos != [REPOSITORY]:
            found.append(f"{nb.relative_to(root)}: setup cell REPO {repos or 'missing'}")
    readme = root / "README.md"
    if readme.is_file():
        text = readme.read_text()
        linked = f"github.com/{REPOSITORY}" in text or "colab.research.google.com/github" in text
        if linked and not PUBLISHED:
            found.append("README.md: links the repository, which is not published yet")
    return found


def write_places(root: str | Path) -> list[Path]:
    """Rewrite every notebook's badge and setup-cell ``REPO`` line from :data:`REPOSITORY`.

    Notebook: notebooks/01_signal_processing.ipynb

    Returns:
        The notebooks that changed.
    """
    changed = []
    for nb in _notebooks(Path(root)):
        text = nb.read_text()
        book = json.loads(text)
        for i, cell in enumerate(book["cells"]):
            before = _source(cell)
            after = before
            if i == 0:
                after = _COLAB.sub(lambda m: colab_url(m.group(2)), after)
            if cell["cell_type"] == "code":
                after = _SETUP.sub(setup_line(), after)
            if after != before:
                cell["source"] = after.splitlines(keepends=True)
        new = json.dumps(book, indent=1, ensure_ascii=False) + "\n"
        if new != text:
            nb.write_text(new)
            changed.append(nb)
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.repository [--write]``: check (or rewrite) the places that name the
    repository.

    Notebook: notebooks/01_signal_processing.ipynb

    Returns:
        0 when every place matches (after ``--write``, always), 1 otherwise.
    """
    p = options.Parser(prog="python -m utils.repository",
                       description="Check or rewrite the Colab badges and setup cells.")
    p.add_argument("--root", default=".", help="the collection's folder (default: .)")
    p.add_argument("--write", action="store_true",
                   help=f"rewrite every badge and setup cell for {REPOSITORY}")
    try:
        a = p.parse_args(argv)
    except SystemExit as exc:  # a refusal (one line, printed) or --help
        return int(exc.code or 0)
    if a.write:
        for nb in write_places(a.root):
            print(f"rewrote {nb}")
    stale = stale_places(a.root)
    for line in stale:
        print(line, file=sys.stderr)
    if not stale:
        print(f"every badge and setup cell names {REPOSITORY}")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())

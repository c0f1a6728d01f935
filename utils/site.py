"""The executed collection as a web site: every notebook run top to bottom, one HTML page each.

Stored without outputs, the notebooks show no figure and play no sound until someone runs
them. ``python -m utils.site OUT_DIR`` runs each one in a fresh kernel (as the tests do) and
writes ``OUT_DIR/<notebook>.html`` with its figures, tables and audio players, plus
``OUT_DIR/index.html`` listing the pages in reading order. Every page is self-contained and
loads nothing from the network:

* figures and sounds are embedded as ``data:`` URIs (the notebooks' own outputs);
* formulas are converted to MathML when the page is built (browsers render MathML natively),
  so no MathJax is fetched;
* an interactive explorer (ipywidgets) is drawn as a snapshot of its first setting, with its
  controls shown but disabled, since a page has no kernel to call back;
* the Colab badge image is drawn inline.

The pages read like a book: each ``<title>`` is the notebook's own title, every page links to
the contents and to the pages before and after it (at its top and its foot), every figure has
an ``alt`` text saying what it shows (the titles and axis labels its cell sets, or the section it
belongs to), and no output shows where it ran: the repository root, the home and temporary
folders and the machine's name are replaced by ``<repo>``, ``<home>``, ``<tmp>`` and ``<host>``.
After writing, :func:`check_links` checks that every relative ``href``/``src`` of the pages
names a file of the site or of the repository (e.g. ``../docs/seed.md``).

Serve the folder with ``python -m http.server --directory OUT_DIR`` and open
``http://localhost:8000``, or open ``OUT_DIR/index.html`` directly. A notebook that fails is
reported (file, cell, error) and left out; the others are still built, and the command exits
with status 1.

Notebook: notebooks/01_signal_processing.ipynb
"""

from __future__ import annotations

import base64
import html
import json
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils import options
from utils.checkpoint import save_atomic_bytes, writable_folder
from utils.errors import OptionError, ProjectError

__all__ = [
    "PageResult",
    "build_site",
    "check_links",
    "figure_alt_texts",
    "scrub_paths",
    "find_notebooks",
    "markdown_math_to_mathml",
    "static_widget_html",
    "inline_colab_badge",
    "main",
]

#: The repository root, hidden from the pages' outputs as ``<repo>``.
REPO = Path(__file__).resolve().parents[1]
#: The template folder (an nbconvert template extending JupyterLab's, without remote scripts).
TEMPLATES = Path(__file__).with_name("site_templates")
#: The MIME types of widget outputs and of the widget state stored in a notebook's metadata.
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
#: The badge image the notebooks link to, replaced by an inline copy on the pages.
COLAB_BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
_BADGE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" '
    'aria-label="Open in Colab"><rect width="117" height="20" rx="3" fill="#555"/>'
    '<rect x="22" width="95" height="20" rx="3" fill="#f9ab00"/>'
    '<circle cx="11" cy="10" r="5" fill="none" stroke="#f9ab00" stroke-width="2.5"/>'
    '<text x="69" y="14" font-family="Verdana,sans-serif" font-size="11" fill="#fff" '
    'text-anchor="middle">Open in Colab</text></svg>'
)


# --------------------------------------------------------------------------------------------
# Markdown: formulas to MathML, the badge inline
# --------------------------------------------------------------------------------------------

# fenced code, inline code (left alone), display math, inline math (converted)
_MD_TOKENS = re.compile(
    r"(?P<fence>```.*?```)|(?P<code>`[^`\n]+`)|\$\$(?P<display>.+?)\$\$"
    r"|(?<![\\$])\$(?P<inline>[^$\n]+?)\$",
    re.S,
)


def markdown_math_to_mathml(text: str, formulas: dict[str, str]) -> str:
    """Replace every ``$…$`` and ``$$…$$`` of a markdown text by a placeholder for its MathML.

    The placeholders are plain words, so the markdown renderer passes them through untouched
    (MathML put straight into markdown would have its ``*`` and ``_`` read as emphasis); the
    caller swaps them for the MathML in the rendered HTML. Code spans and fenced blocks are
    left alone. A formula that cannot be converted stays as its TeX source in ``<code>``.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        text: The markdown source of one cell.
        formulas: ``{placeholder: MathML}`` of the page so far; this text's are added (the
            placeholders are numbered across the page, so they never repeat).

    Returns:
        The text with placeholders.
    """
    from latex2mathml.converter import convert

    def swap(m: re.Match[str]) -> str:
        if m.group("fence") or m.group("code"):
            return m.group(0)
        display = m.group("display") is not None
        tex = (m.group("display") if display else m.group("inline")).strip()
        try:
            mathml = convert(tex, display="block" if display else "inline")
        except Exception:  # noqa: BLE001 - any parser failure: show the source instead
            mathml = f"<code>{html.escape(tex)}</code>"
        key = f"MATHPLACEHOLDER{len(formulas)}END"
        formulas[key] = mathml
        return key

    return _MD_TOKENS.sub(swap, text)


def _restore_math(html_text: str, formulas: dict[str, str]) -> str:
    """Put the MathML back where :func:`markdown_math_to_mathml` left its placeholders."""
    return re.sub(r"MATHPLACEHOLDER\d+END", lambda m: formulas[m.group(0)], html_text)


def inline_colab_badge(text: str) -> str:
    """Point the Colab badge image of a markdown text at an inline ``data:`` SVG.

    The page keeps the link to Colab but fetches no image from the network.

    Notebook: notebooks/01_signal_processing.ipynb
    """
    data = base64.b64encode(_BADGE_SVG.encode()).decode()
    return text.replace(COLAB_BADGE_URL, f"data:image/svg+xml;base64,{data}")


# --------------------------------------------------------------------------------------------
# Widgets: a static snapshot of the stored widget state
# --------------------------------------------------------------------------------------------

_BOXES = {"VBoxModel": "column", "HBoxModel": "row", "BoxModel": "row", "GridBoxModel": "row"}
_CHOICES = {"DropdownModel", "SelectModel", "RadioButtonsModel", "ToggleButtonsModel"}
_SLIDERS = {"IntSliderModel", "FloatSliderModel", "FloatLogSliderModel"}


def _model_id(ref: str) -> str:
    return ref.removeprefix("IPY_MODEL_")


def _output_html(outputs: Sequence[dict[str, Any]]) -> str:
    """The HTML of an Output widget's captured outputs (the common MIME types)."""
    parts = []
    for out in outputs:
        data = out.get("data", {})
        if out.get("output_type") == "stream":
            parts.append(f"<pre>{html.escape(out.get('text', ''))}</pre>")
        elif "text/html" in data:
            parts.append("".join(data["text/html"]))
        elif "image/png" in data:
            parts.append(f'<img alt="figure" src="data:image/png;base64,{data["image/png"]}">')
        elif "text/plain" in data:
            parts.append(f"<pre>{html.escape(''.join(data['text/plain']))}</pre>")
    return "".join(parts)


def static_widget_html(model_id: str, state: dict[str, Any]) -> str:
    """HTML drawing a widget as it stood when the notebook finished (no kernel, no script).

    Boxes lay out their children; images, HTML and labels show their values; choice
    widgets and sliders show their current setting, disabled; an Output widget shows what it
    captured. Anything else is named, so nothing disappears silently.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        model_id: The widget's model id (as in a ``widget-view+json`` output).
        state: The ``state`` mapping of the notebook's stored widget state.

    Returns:
        An HTML fragment.
    """
    entry = state.get(model_id)
    if entry is None:
        return "<em>(a widget whose state was not stored)</em>"
    name, s = entry.get("model_name", ""), entry.get("state", {})
    label = html.escape(str(s.get("description", "")))
    if name in _BOXES:
        children = "".join(static_widget_html(_model_id(c), state) for c in s.get("children", []))
        return (f'<div class="site-widget-box" style="display:flex;flex-direction:{_BOXES[name]};'
                f'gap:6px">{children}</div>')
    if name == "ImageModel":
        buffers = {tuple(b["path"]): b["data"] for b in entry.get("buffers", [])}
        data = buffers.get(("value",))
        if not data:
            return "<em>(an empty image widget)</em>"
        fmt = html.escape(str(s.get("format", "png")))
        return (f'<img class="site-widget-image" alt="widget image" '
                f'src="data:image/{fmt};base64,{data}">')
    if name in ("HTMLModel", "HTMLMathModel"):
        return f'<div class="site-widget-html">{s.get("value", "")}</div>'
    if name == "LabelModel":
        return f"<span>{html.escape(str(s.get('value', '')))}</span>"
    if name in _CHOICES:
        options = s.get("_options_labels", [])
        index = s.get("index")
        opts = "".join(f"<option{' selected' if i == index else ''}>{html.escape(str(o))}</option>"
                       for i, o in enumerate(options))
        return f"<label>{label} <select disabled>{opts}</select></label>"
    if name in _SLIDERS:
        value, lo, hi = s.get("value", 0), s.get("min", 0), s.get("max", 100)
        return (f'<label>{label} <input type="range" disabled min="{lo}" max="{hi}" '
                f'step="{s.get("step", 1)}" value="{value}"> {html.escape(str(value))}</label>')
    if name == "OutputModel":
        return _output_html(s.get("outputs", []))
    return f"<em>({html.escape(name.removesuffix('Model') or 'widget')}: interactive only)</em>"


def _freeze_widgets(nb: Any) -> int:
    """Replace every widget output of an executed notebook by its static snapshot.

    Returns the number of widget outputs replaced.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    n = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                continue
            snapshot = static_widget_html(view.get("model_id", ""), state)
            out["data"] = {"text/html": (
                '<div class="site-widget"><p class="site-widget-note">Interactive in Jupyter '
                "or Colab; here, a snapshot of its first setting.</p>" + snapshot + "</div>")}
            n += 1
    nb.metadata.pop("widgets", None)
    return n


# --------------------------------------------------------------------------------------------
# Outputs: no machine's paths, figures with alt texts
# --------------------------------------------------------------------------------------------

#: Folders that name a machine (a checkout, a home, a temporary folder), wherever they appear.
_MACHINE_PATHS = re.compile(
    r"(?<![\w.~<>-])/(?:work|root|home|tmp)(?![\w.-])(?:/[^\s'\"<>()\[\]{},;:|*?]*)?")
_PLACEHOLDER = {"work": "<repo>", "root": "<home>", "home": "<home>", "tmp": "<tmp>"}


def scrub_paths(text: str, root: str | Path) -> str:
    """A text output without the absolute paths and the name of the machine that produced it.

    The repository root becomes ``<repo>`` (``/work/main/data/x.wav`` reads
    ``<repo>/data/x.wav``), the home folder ``<home>``, the temporary folder ``<tmp>``, and the
    host name ``<host>``. Any other path under ``/work``, ``/root``, ``/home`` or ``/tmp`` (one a
    stored checkpoint recorded on another machine) keeps only its file name:
    ``/home/ann/x/ckpt.pt`` reads ``<home>/…/ckpt.pt``.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        text: One text output (a stream, a ``text/plain`` or ``text/html`` value, a traceback).
        root: The repository root of this machine.

    Returns:
        The text with every such path and name replaced.
    """
    known = {str(Path(root).resolve()): "<repo>", str(Path(root).absolute()): "<repo>",
             str(Path(tempfile.gettempdir()).resolve()): "<tmp>", tempfile.gettempdir(): "<tmp>",
             str(Path.home()): "<home>"}
    for folder in sorted(known, key=len, reverse=True):
        folder_ = folder.rstrip("/")
        if folder_:
            text = re.sub(r"(?<![\w.~-])" + re.escape(folder_) + r"(?![\w.-])", known[folder],
                          text)

    def other(m: re.Match[str]) -> str:
        parts = m.group(0).split("/")  # ['', 'home', 'ann', 'x', 'ckpt.pt']
        rest = parts[3:] if parts[1] in ("home", "work") else parts[2:]
        if len(rest) > 1:
            rest = ["…", rest[-1]]
        return "/".join([_PLACEHOLDER[parts[1]], *rest])

    text = _MACHINE_PATHS.sub(other, text)
    host = socket.gethostname().split(".")[0]
    if len(host) >= 4:
        text = re.sub(rf"(?<![\w-]){re.escape(host)}(?![\w-])", "<host>", text)
    return text


def _scrub_outputs(nb: Any, root: Path) -> None:
    """Apply :func:`scrub_paths` to every text of every output of a notebook (not to images)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = scrub_paths("".join(out["text"]), root)
            if "evalue" in out:
                out["evalue"] = scrub_paths(out["evalue"], root)
            if "traceback" in out:
                out["traceback"] = [scrub_paths(t, root) for t in out["traceback"]]
            data = out.get("data", {})
            for mime, value in data.items():
                if mime.startswith("text/") or mime == "image/svg+xml":
                    data[mime] = scrub_paths("".join(value), root)


# the titles and axis labels a cell sets: set_title("…"), title="…", xlabel("…"), suptitle("…")
_LABEL_CALL = re.compile(
    r"\b(?P<kind>suptitle|set_title|title|set_xlabel|set_ylabel|xlabel|ylabel)"
    r"\s*[(=]\s*[rRuUfF]{0,2}(?P<q>\"\"\"|'''|\"|')(?P<text>.*?)(?P=q)", re.S)
_IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml")


def _plain(text: str) -> str:
    """A label as plain words: f-string fields and TeX markup dropped, spaces collapsed."""
    text = re.sub(r"\{[^{}]*\}", "…", text)
    text = re.sub(r"\\[a-zA-Z]+|[$\\{}^_]", "", text)
    return re.sub(r"\s+", " ", text).strip(" ,;:")


def figure_alt_texts(nb: Any, title: str) -> list[str]:
    """One ``alt`` text per image output of a notebook, in order, never empty.

    A figure is described by the titles and axis labels its code cell sets (``set_title``,
    ``suptitle``, ``title=``, ``xlabel``/``ylabel``, ``ax.set(title=..., xlabel=...)``): "Figure
    N of <title>: <titles> (axes: <labels>)". A cell that sets none gives "Figure N of <title>:
    output of the cell after '<section heading>'".

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        nb: The executed notebook.
        title: The notebook's title.

    Returns:
        The texts, one per ``image/png``, ``image/jpeg`` or ``image/svg+xml`` output.
    """
    alts: list[str] = []
    heading = title
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = re.findall(r"^#{1,6}\s+(.+?)\s*$", cell.source, re.M)
            if found:
                heading = re.sub(r"[*`$]", "", found[-1]).strip()
            continue
        if cell.cell_type != "code":
            continue
        titles: list[str] = []
        axes: list[str] = []
        for m in _LABEL_CALL.finditer(cell.source):
            text = _plain(m.group("text"))
            if text and text not in titles + axes:
                is_title = m.group("kind") in ("suptitle", "set_title", "title")
                (titles if is_title else axes).append(text)
        what = "; ".join(titles)
        if axes:
            what += f"{' ' if what else ''}(axes: {', '.join(axes)})"
        for out in cell.get("outputs", []):
            if any(m in out.get("data", {}) for m in _IMAGE_MIMES):
                n = len(alts) + 1
                alts.append(f"Figure {n} of {title}: {what}" if what else
                            f"Figure {n} of {title}: output of the cell after '{heading}'")
    return alts


def _figure_sources(nb: Any, alts: Sequence[str]) -> dict[str, str]:
    """``{image data: alt text}`` of a notebook's image outputs (what the page's ``src`` holds)."""
    found: dict[str, str] = {}
    images = (out["data"] for cell in nb.cells for out in cell.get("outputs", [])
              if any(m in out.get("data", {}) for m in _IMAGE_MIMES))
    for data, alt in zip(images, alts, strict=False):
        for mime in _IMAGE_MIMES:
            if mime in data:
                value = "".join(data[mime]).replace("\n", "")
                found.setdefault(value, alt)
                found.setdefault(base64.b64encode(value.encode()).decode(), alt)
    return found


_IMG = re.compile(r"<img\b[^>]*>", re.S)
#: What nbconvert writes as the ``alt`` of every output image: replaced, it says nothing.
_NBCONVERT_ALT = "No description has been provided for this image"
_ALT = re.compile(r"""\salt\s*=\s*(["'])(.*?)\1""", re.S)
_SRC = re.compile(r"""\ssrc\s*=\s*(["'])(.*?)\1""", re.S)


def _add_alts(page: str, by_source: dict[str, str], title: str) -> str:
    """Give every ``<img>`` of a page a non-empty ``alt``: its figure's text, or a fallback."""
    count = 0

    def fix(m: re.Match[str]) -> str:
        nonlocal count
        count += 1
        tag = m.group(0)
        alt = _ALT.search(tag)
        if alt is not None and alt.group(2).strip() not in ("", _NBCONVERT_ALT):
            return tag
        src = _SRC.search(tag)
        data = src.group(2).split(",", 1)[-1].replace("\n", "") if src else ""
        text = by_source.get(data) or f"Image {count} of {title}"
        if alt is not None:
            tag = _ALT.sub("", tag, count=1)
        return f'<img alt="{html.escape(text, quote=True)}"{tag[4:]}'

    return _IMG.sub(fix, page)


# --------------------------------------------------------------------------------------------
# Links
# --------------------------------------------------------------------------------------------

_LINK = re.compile(r"""\s(?:href|src)\s*=\s*(["'])(.*?)\1""", re.S)


def check_links(site_dir: str | Path, notebooks_dir: str | Path) -> list[str]:
    """Every relative link of the built pages that leads nowhere.

    A relative ``href`` or ``src`` (no scheme such as ``https:`` or ``data:``, not ``//host``,
    ``/path`` or a ``#fragment`` alone) must name a file of the site (another page) or, read
    from the folder the notebooks sit in, a file of the repository (``../docs/seed.md`` from
    a notebook of ``notebooks/``).

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        site_dir: The built site.
        notebooks_dir: The folder of the notebooks the pages were built from.

    Returns:
        One ``"page: link"`` line per dead link, in page order; empty when all resolve.
    """
    site_dir, notebooks_dir = Path(site_dir), Path(notebooks_dir)
    dead = []
    for page in sorted(site_dir.glob("*.html")):
        seen = set()
        for m in _LINK.finditer(page.read_text(encoding="utf-8")):
            link = html.unescape(m.group(2)).strip()
            if (not link or link.startswith(("#", "/"))
                    or re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", link) or link in seen):
                continue
            seen.add(link)
            target = re.split(r"[#?]", link, maxsplit=1)[0]
            if not any((base / target).is_file() for base in (page.parent, notebooks_dir)):
                dead.append(f"{page.name}: {link}")
    return dead


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


@dataclass
class PageResult:
    """What happened to one notebook.

    Notebook: notebooks/01_signal_processing.ipynb

    Attributes:
        notebook: The notebook file.
        page: The HTML file written (``None`` when it failed).
        title: The notebook's title (its first heading).
        summary: The first paragraph after the title.
        seconds: Execution time.
        figures: Figures (``<img>``) on the page.
        players: Audio players (``<audio>``) on the page.
        error: Why it failed (``None`` when it did not).
        dead_links: Relative links of the page that lead nowhere (:func:`check_links`).
    """

    notebook: Path
    page: Path | None = None
    title: str = ""
    summary: str = ""
    seconds: float = 0.0
    figures: int = 0
    players: int = 0
    error: str | None = None
    dead_links: list[str] = field(default_factory=list)


def find_notebooks(folder: str | Path, only: Sequence[str] = ()) -> list[Path]:
    """The numbered notebooks of a folder in reading order, optionally only some of them.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        folder: The notebooks folder.
        only: Number prefixes or names to keep (e.g. ``["01", "02"]``); empty keeps all.

    Returns:
        The notebook files, sorted by name (their number).

    Raises:
        OptionError: No such folder, no notebook in it, or an ``only`` entry matching none.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise OptionError("--notebooks", f"no such folder: {folder}")
    books = sorted(p for p in folder.glob("*.ipynb") if re.match(r"\d\d_", p.name))
    if not books:
        raise OptionError("--notebooks", f"no numbered notebook (NN_name.ipynb) in {folder}")
    if only:
        unknown = [o for o in only if not any(p.name.startswith(o) for p in books)]
        if unknown:
            raise OptionError("--only", f"no notebook starts with {unknown} in {folder}")
        books = [p for p in books if any(p.name.startswith(o) for o in only)]
    return books


#: The number markup in front of a notebook title: "01 · ", "3. ", "02 - ".
_TITLE_NUMBER = re.compile(r"^\d+\s*(?:[·.:)\-–—]\s*)?")


def _title_and_summary(nb: Any) -> tuple[str, str]:
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first is None:
        return "", ""
    lines = first.source.splitlines()
    title = next((ln.lstrip("# ").strip() for ln in lines if ln.startswith("# ")), "")
    title = _TITLE_NUMBER.sub("", title).strip() or title
    paragraphs = [p.strip() for p in "\n".join(lines).split("\n\n")]
    summary = next((p for p in paragraphs if p and not p.startswith(("#", "[!["))), "")
    summary = re.sub(r"\s+", " ", summary)
    if summary and summary[-1] not in ".?!*)":
        summary += " …"  # the paragraph runs on into a formula or a list
    return title, summary


def _markdown_html(text: str) -> str:
    """A markdown snippet as HTML, its formulas as MathML."""
    import mistune

    formulas: dict[str, str] = {}
    body = mistune.html(markdown_math_to_mathml(text, formulas))
    return _restore_math(body, formulas)


def _execute(path: Path, timeout: int) -> Any:
    """Run a notebook in a fresh kernel, in its own folder, keeping the widget state."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            store_widget_state=True)
    client.execute()
    return nb


def _render(nb: Any, nav: str, title: str) -> str:
    """The HTML page of an executed notebook (math as MathML, widgets frozen, no remote URL,
    no machine's path, an ``alt`` on every image, ``title`` as the page's title)."""
    from nbconvert import HTMLExporter

    nb.metadata["title"] = title or "Notebook"
    _scrub_outputs(nb, REPO)
    figures = _figure_sources(nb, figure_alt_texts(nb, title))
    formulas: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = markdown_math_to_mathml(inline_colab_badge(cell.source), formulas)
    _freeze_widgets(nb)
    exporter = HTMLExporter(template_name="site", extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(nb, resources={"site_nav": nav})
    return _add_alts(_restore_math(body, formulas), figures, title)


def _nav(pages: Sequence[PageResult], i: int) -> str:
    """The links of page ``i``: previous, contents, next (the first and last page's outer
    neighbour is the contents)."""
    before = (f"{pages[i - 1].notebook.stem}.html", pages[i - 1].title) if i > 0 else (
        "index.html", "Contents")
    after = (f"{pages[i + 1].notebook.stem}.html", pages[i + 1].title) if i + 1 < len(
        pages) else ("index.html", "Contents")
    return (f'<a rel="prev" class="site-prev" href="{before[0]}">← Previous: '
            f"{html.escape(before[1])}</a> · "
            '<a class="site-contents" href="index.html">Contents</a> · '
            f'<a rel="next" class="site-next" href="{after[0]}">Next: '
            f"{html.escape(after[1])} →</a>")


def _index_html(results: Sequence[PageResult], built: str) -> str:
    rows = []
    for r in results:
        if r.page is not None:
            head = f'<a href="{r.page.name}">{html.escape(r.title)}</a>'
            facts = (f"{r.figures} figures · {r.players} audio players · "
                     f"ran in {r.seconds:.0f} s")
        else:
            head = html.escape(r.title or r.notebook.name)
            facts = f"<strong>not built</strong>: {html.escape(r.error or '')}"
        rows.append(f"<li><h2>{head}</h2>{_markdown_html(r.summary)}"
                    f'<p class="facts">{facts}</p></li>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Sound reconstruction with VQ-VAEs and complex-valued networks</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #222; }}
ol {{ padding-left: 1.2rem; }} li {{ margin-bottom: 1.2rem; }}
h2 {{ font-size: 1.15rem; margin: 0; }} .facts {{ color: #666; font-size: 0.9rem; margin: 0; }}
</style></head><body>
<h1>Sound reconstruction with VQ-VAEs and complex-valued networks</h1>
<p>The notebooks of the collection, executed: every figure drawn and every sound playable.
Read them in this order. Each page was produced by <code>python -m utils.site</code> on
{html.escape(built)}; open a notebook in Jupyter or Colab to change its parameters and use
its interactive explorers.</p>
<ol>
{chr(10).join(rows)}
</ol></body></html>
"""


def build_site(
    out_dir: str | Path,
    notebooks: Sequence[str | Path],
    *,
    timeout: int = 600,
    log: Callable[[str], None] = print,
) -> list[PageResult]:
    """Execute notebooks and write their pages and the index into ``out_dir``.

    A notebook that fails to run is reported and left out; the others are still written.
    The written pages' relative links are checked (:func:`check_links`); dead ones are logged
    and kept in each page's :attr:`PageResult.dead_links`.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        out_dir: The site folder (created; must be writable).
        notebooks: Notebook files in reading order (:func:`find_notebooks`).
        timeout: Longest time one cell may run, in seconds.
        log: Where progress lines go.

    Returns:
        One :class:`PageResult` per notebook, in order.

    Raises:
        ProjectError: ``out_dir`` cannot be written.
    """
    out = writable_folder(out_dir)
    results = [PageResult(Path(p)) for p in notebooks]
    executed = []
    for r in results:
        t0 = time.perf_counter()
        try:
            nb = _execute(r.notebook, timeout)
        except Exception as exc:  # noqa: BLE001 - any failure of a notebook is reported
            r.error = _short_error(exc)
            r.title = r.notebook.stem
            log(f"{r.notebook.name}: FAILED ({r.error})")
            executed.append(None)
            continue
        r.seconds = time.perf_counter() - t0
        r.title, r.summary = _title_and_summary(nb)
        executed.append(nb)
        log(f"{r.notebook.name}: ran in {r.seconds:.1f} s")
    pages = [r for r in results if r.error is None]
    for r, nb in zip(results, executed, strict=True):
        if nb is None:
            continue
        page = _render(nb, _nav(pages, pages.index(r)), r.title)
        r.figures = len(re.findall(r"<img\b", page))
        r.players = len(re.findall(r"<audio\b", page))
        r.page = save_atomic_bytes(page.encode(), out / f"{r.notebook.stem}.html")
        log(f"{r.page.name}: {r.figures} figures, {r.players} audio players, "
            f"{len(page) / 1e6:.1f} MB")
    built = time.strftime("%Y-%m-%d %H:%M %Z")
    save_atomic_bytes(_index_html(results, built).encode(), out / "index.html")
    by_page = {r.page.name: r for r in results if r.page is not None}
    folder = results[0].notebook.resolve().parent if results else out
    for line in check_links(out, folder):  # the notebooks of one folder (find_notebooks)
        name, link = line.split(": ", 1)
        if name in by_page:
            by_page[name].dead_links.append(link)
        log(f"{name}: dead link {link}")
    return results


def _short_error(exc: BaseException) -> str:
    """One line naming the failing cell's error (nbclient's message is the whole traceback)."""
    name = getattr(exc, "ename", type(exc).__name__)
    value = getattr(exc, "evalue", str(exc))
    return f"{name}: {str(value).strip().splitlines()[0] if str(value).strip() else ''}"[:300]


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def build_parser() -> options.Parser:
    """The parser of ``python -m utils.site``.

    Notebook: notebooks/01_signal_processing.ipynb
    """
    p = options.Parser(
        prog="python -m utils.site",
        description="Execute the notebooks and write them as web pages with an index.")
    p.add_argument("out", metavar="OUT_DIR", help="the site folder (created)")
    p.add_argument("--notebooks", default="notebooks",
                   help="folder of the numbered notebooks (default: ./notebooks)")
    p.add_argument("--only", nargs="+", default=[], metavar="NN",
                   help="build only these notebooks (number prefixes, e.g. 01 02)")
    p.add_argument("--timeout", type=options.Number(int, 1, 86_400), default=600,
                   help="longest time one cell may run, in seconds (default 600)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of results")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.site OUT_DIR``: build the executed collection.

    Notebook: notebooks/01_signal_processing.ipynb

    Returns:
        0 when every page was built with every link resolving, 1 when a notebook failed or
        a page has a dead relative link, 2 for an invalid option.
    """
    p = build_parser()
    try:
        a = p.parse_args(argv)
    except SystemExit as exc:  # a refusal (one line, printed) or --help
        return int(exc.code or 0)
    try:
        books = find_notebooks(a.notebooks, a.only)
        results = build_site(a.out, books, timeout=a.timeout)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in results if r.error is not None]
    dead = [f"{r.page.name}: {link}" for r in results if r.page for link in r.dead_links]
    print(f"\n{len(results) - len(failed)} of {len(results)} pages written to {a.out}; "
          f"serve with: python -m http.server --directory {a.out} 8000")
    for r in failed:
        print(f"skipped {r.notebook.name}: {r.error}", file=sys.stderr)
    for line in dead:
        print(f"dead link in {line}", file=sys.stderr)
    if a.json:
        print(json.dumps({"pages": [
            {"notebook": r.notebook.name, "page": r.page.name if r.page else None,
             "seconds": round(r.seconds, 1), "figures": r.figures, "players": r.players,
             "error": r.error, "dead_links": r.dead_links} for r in results]}))
    return 1 if failed or dead else 0


if __name__ == "__main__":
    sys.exit(main())

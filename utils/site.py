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

Serve the folder with ``python -m http.server --directory OUT_DIR`` and open
``http://localhost:8000``, or open ``OUT_DIR/index.html`` directly. A notebook that fails is
reported (file, cell, error) and left out; the others are still built, and the command exits
with status 1.

Notebook: notebooks/01_signal_processing.ipynb
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.checkpoint import save_atomic_bytes, writable_folder
from utils.errors import OptionError, ProjectError

__all__ = [
    "PageResult",
    "build_site",
    "find_notebooks",
    "markdown_math_to_mathml",
    "static_widget_html",
    "inline_colab_badge",
    "main",
]

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
    """

    notebook: Path
    page: Path | None = None
    title: str = ""
    summary: str = ""
    seconds: float = 0.0
    figures: int = 0
    players: int = 0
    error: str | None = None


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


def _title_and_summary(nb: Any) -> tuple[str, str]:
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first is None:
        return "", ""
    lines = first.source.splitlines()
    title = next((ln.lstrip("# ").strip() for ln in lines if ln.startswith("# ")), "")
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


def _render(nb: Any, nav: str) -> str:
    """The HTML page of an executed notebook (math as MathML, widgets frozen, no remote URL)."""
    from nbconvert import HTMLExporter

    formulas: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = markdown_math_to_mathml(inline_colab_badge(cell.source), formulas)
    _freeze_widgets(nb)
    exporter = HTMLExporter(template_name="site", extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(nb, resources={"site_nav": nav})
    return _restore_math(body, formulas)


def _nav(pages: Sequence[PageResult], i: int) -> str:
    links = ['<a href="index.html">Contents</a>']
    if i > 0:
        links.append(f'<a href="{pages[i - 1].notebook.stem}.html">← '
                     f"{html.escape(pages[i - 1].title)}</a>")
    if i + 1 < len(pages):
        links.append(f'<a href="{pages[i + 1].notebook.stem}.html">'
                     f"{html.escape(pages[i + 1].title)} →</a>")
    return " · ".join(links)


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
        page = _render(nb, _nav(pages, pages.index(r)))
        r.figures = len(re.findall(r"<img\b", page))
        r.players = len(re.findall(r"<audio\b", page))
        r.page = save_atomic_bytes(page.encode(), out / f"{r.notebook.stem}.html")
        log(f"{r.page.name}: {r.figures} figures, {r.players} audio players, "
            f"{len(page) / 1e6:.1f} MB")
    built = time.strftime("%Y-%m-%d %H:%M %Z")
    save_atomic_bytes(_index_html(results, built).encode(), out / "index.html")
    return results


def _short_error(exc: BaseException) -> str:
    """One line naming the failing cell's error (nbclient's message is the whole traceback)."""
    name = getattr(exc, "ename", type(exc).__name__)
    value = getattr(exc, "evalue", str(exc))
    return f"{name}: {str(value).strip().splitlines()[0] if str(value).strip() else ''}"[:300]


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.site OUT_DIR``: build the executed collection.

    Notebook: notebooks/01_signal_processing.ipynb

    Returns:
        0 when every page was built, 1 when a notebook failed, 2 for an invalid option.
    """
    p = argparse.ArgumentParser(
        prog="python -m utils.site",
        description="Execute the notebooks and write them as web pages with an index.")
    p.add_argument("out", metavar="OUT_DIR", help="the site folder (created)")
    p.add_argument("--notebooks", default="notebooks",
                   help="folder of the numbered notebooks (default: ./notebooks)")
    p.add_argument("--only", nargs="+", default=[], metavar="NN",
                   help="build only these notebooks (number prefixes, e.g. 01 02)")
    p.add_argument("--timeout", type=int, default=600,
                   help="longest time one cell may run, in seconds (default 600)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of results")
    a = p.parse_args(argv)
    try:
        if a.timeout < 1:
            raise OptionError("--timeout", f"must be at least 1 second, got {a.timeout}")
        books = find_notebooks(a.notebooks, a.only)
        results = build_site(a.out, books, timeout=a.timeout)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in results if r.error is not None]
    print(f"\n{len(results) - len(failed)} of {len(results)} pages written to {a.out}; "
          f"serve with: python -m http.server --directory {a.out} 8000")
    for r in failed:
        print(f"skipped {r.notebook.name}: {r.error}", file=sys.stderr)
    if a.json:
        print(json.dumps({"pages": [
            {"notebook": r.notebook.name, "page": r.page.name if r.page else None,
             "seconds": round(r.seconds, 1), "figures": r.figures, "players": r.players,
             "error": r.error} for r in results]}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The executed collection as a web site (utils.site), and a real browser reading it.

The browser test is marked ``browser``: ``pytest -m "not browser"`` skips it. It needs Debian's
``chromium`` and ``chromium-driver`` and the ``selenium`` package; where they are absent it is
skipped with the reason, unless ``VQVAE_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes their
absence a failure.
"""

from __future__ import annotations

import base64
import functools
import html
import http.server
import json
import os
import re
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import nbformat
import pytest

from utils import site
from utils.errors import OptionError

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------------
# Markdown and widgets (no kernel)
# --------------------------------------------------------------------------------------------


def test_formulas_become_mathml_with_page_unique_placeholders():
    formulas: dict[str, str] = {}
    a = site.markdown_math_to_mathml("frame length $N$ and hop $H$", formulas)
    b = site.markdown_math_to_mathml("one cell later: $$\\frac{1}{N}$$ and $x^2$", formulas)
    keys = re.findall(r"MATHPLACEHOLDER\d+END", a + b)
    assert len(keys) == len(set(keys)) == len(formulas) == 4
    assert "$" not in a + b
    assert all(v.startswith("<math") for v in formulas.values())
    assert 'display="block"' in formulas[keys[2]] and "<mfrac>" in formulas[keys[2]]
    assert "<mi>N</mi>" in formulas[keys[0]] and "<mi>H</mi>" in formulas[keys[1]]


def test_code_spans_and_fences_keep_their_dollars():
    formulas: dict[str, str] = {}
    text = "run `echo $HOME $PATH` then\n```\na = $b$\n```\nand $y$"
    out = site.markdown_math_to_mathml(text, formulas)
    assert "`echo $HOME $PATH`" in out and "a = $b$" in out
    assert len(formulas) == 1


def test_a_formula_the_converter_rejects_stays_as_its_source():
    formulas: dict[str, str] = {}
    site.markdown_math_to_mathml(r"broken $x^{$ here", formulas)
    (mathml,) = formulas.values()
    assert mathml == "<code>x^{</code>"


def test_colab_badge_is_drawn_inline_and_the_link_kept():
    md = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
          "(https://colab.research.google.com/github/o/r/blob/main/notebooks/01_x.ipynb)")
    out = site.inline_colab_badge(md)
    assert site.COLAB_BADGE_URL not in out
    assert "(https://colab.research.google.com/github/o/r/blob/main/notebooks/01_x.ipynb)" in out
    svg = base64.b64decode(re.search(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", out)[1])
    assert svg.startswith(b"<svg") and b"Open in Colab" in svg


PNG = base64.b64encode(b"\x89PNG fake").decode()


def _widget_state() -> dict:
    png = PNG
    return {
        "box": {"model_name": "VBoxModel", "state": {"children": [
            "IPY_MODEL_img", "IPY_MODEL_html", "IPY_MODEL_dd", "IPY_MODEL_slider",
            "IPY_MODEL_odd"]}},
        "img": {"model_name": "ImageModel", "state": {"format": "png"},
                "buffers": [{"path": ["value"], "data": png, "encoding": "base64"}]},
        "html": {"model_name": "HTMLModel", "state": {"value": "<audio controls></audio>"}},
        "dd": {"model_name": "DropdownModel", "state": {
            "description": "n_fft", "_options_labels": ["256", "512"], "index": 1}},
        "slider": {"model_name": "IntSliderModel", "state": {
            "description": "stages", "value": 3, "min": 1, "max": 8, "step": 1}},
        "odd": {"model_name": "ColorPickerModel", "state": {}},
    }


def test_a_widget_is_drawn_from_its_stored_state():
    html = site.static_widget_html("box", _widget_state())
    assert "flex-direction:column" in html
    assert f'src="data:image/png;base64,{PNG}"' in html
    assert "<audio controls></audio>" in html
    assert "<option selected>512</option>" in html and "<select disabled>" in html
    assert 'type="range" disabled min="1" max="8"' in html and 'value="3"' in html
    assert "ColorPicker: interactive only" in html          # named, never dropped
    assert "not stored" in site.static_widget_html("missing", _widget_state())


def test_widget_outputs_are_replaced_by_their_snapshot_and_the_widget_scripts_dropped():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("VBox([...])")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "text/plain": "VBox(...)", site.WIDGET_VIEW: {"model_id": "box", "version_major": 2}})]
    nb.cells = [cell]
    nb.metadata["widgets"] = {site.WIDGET_STATE: {"state": _widget_state()}}
    assert site._freeze_widgets(nb) == 1
    assert list(cell.outputs[0]["data"]) == ["text/html"]
    assert "snapshot of its first setting" in cell.outputs[0]["data"]["text/html"]
    assert "widgets" not in nb.metadata


# --------------------------------------------------------------------------------------------
# Options and output folder (refused before any notebook runs)
# --------------------------------------------------------------------------------------------


def test_notebooks_are_found_in_reading_order_and_a_bad_selection_is_refused(tmp_path):
    for name in ("02_b.ipynb", "01_a.ipynb", "notes.ipynb", "10_c.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in site.find_notebooks(tmp_path)] == ["01_a.ipynb", "02_b.ipynb",
                                                               "10_c.ipynb"]
    assert [p.name for p in site.find_notebooks(tmp_path, ["02"])] == ["02_b.ipynb"]
    with pytest.raises(OptionError, match="--only.*'07'"):
        site.find_notebooks(tmp_path, ["07"])
    with pytest.raises(OptionError, match="--notebooks"):
        site.find_notebooks(tmp_path / "nowhere")


def test_command_refuses_bad_options_and_an_unwritable_folder(tmp_path, capsys):
    assert site.main([str(tmp_path / "s"), "--timeout", "0"]) == 2
    assert "--timeout" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert site.main([str(blocker), "--notebooks", str(ROOT / "notebooks")]) == 2
    assert str(blocker) in capsys.readouterr().err


def _notebook(path: Path, *cells) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_a_failing_notebook_is_reported_and_the_others_still_built(tmp_path, capsys):
    books = tmp_path / "nb"
    books.mkdir()
    md = nbformat.v4.new_markdown_cell
    code = nbformat.v4.new_code_cell
    _notebook(books / "01_ok.ipynb", md("# 01 · Fine\n\nA first page with $x^2$."),
              code("from IPython.display import Audio\nimport numpy as np\n"
                   "Audio(np.sin(np.arange(8000) / 5), rate=8000)"))
    _notebook(books / "02_bad.ipynb", md("# 02 · Broken"), code("raise ValueError('boom')"))
    out = tmp_path / "site"
    rc = site.main([str(out), "--notebooks", str(books), "--timeout", "60", "--json"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "skipped 02_bad.ipynb: ValueError: boom" in captured.err
    pages = json.loads(captured.out.strip().splitlines()[-1])["pages"]
    assert [(p["page"], p["players"], p["error"]) for p in pages] == [
        ("01_ok.html", 1, None), (None, 0, "ValueError: boom")]
    page = (out / "01_ok.html").read_text()
    assert "<math" in page and "<audio" in page and "<script" not in page
    index = (out / "index.html").read_text()
    assert 'href="01_ok.html"' in index and "not built" in index and "boom" in index
    assert not list(out.glob(".*.tmp")) and not list(out.glob(".*.partial"))
    assert not (out / "02_bad.html").exists()


# --------------------------------------------------------------------------------------------
# The site reads like a book: titles, alt texts, no machine's paths, prev/next, live links
# --------------------------------------------------------------------------------------------


def test_paths_and_the_host_name_are_replaced(tmp_path):
    root = site.REPO
    text = (f"loaded {root}/data/x.wav from {tempfile.gettempdir()}/run1/a.pt; "
            f"home {Path.home()}/.cache/torch; other /home/ann/exp/ckpt.pt and /work/co/b/c.txt;"
            f" on {socket.gethostname()}")
    out = site.scrub_paths(text, root)
    assert "<repo>/data/x.wav" in out and "<tmp>/run1/a.pt" in out
    assert "<home>/…/ckpt.pt" in out and "<repo>/…/c.txt" in out
    for folder in ("/work/", "/root/", "/home/", "/tmp/"):
        assert folder not in out, out
    if len(socket.gethostname().split(".")[0]) >= 4:
        assert socket.gethostname().split(".")[0] not in out
    assert site.scrub_paths("a/b/tmp/c and 1/2", root) == "a/b/tmp/c and 1/2"  # relative: kept


def test_every_figure_gets_an_alt_text_from_its_labels_or_its_section():
    nb = nbformat.v4.new_notebook()
    png = nbformat.v4.new_output("display_data", data={"image/png": PNG})
    labelled = nbformat.v4.new_code_cell(
        'ax.set(title=f"Ramp of {n} samples", xlabel="time (s)")\nax.set_ylabel("$x$")')
    labelled.outputs = [png]
    bare = nbformat.v4.new_code_cell("plt.plot(y)")
    bare.outputs = [png, png]
    nb.cells = [nbformat.v4.new_markdown_cell("# 01 · T\n\n## 1. Ramps"), labelled,
                nbformat.v4.new_markdown_cell("## 2. *Bare* figures"), bare]
    assert site.figure_alt_texts(nb, "T") == [
        "Figure 1 of T: Ramp of … samples (axes: time (s), x)",
        "Figure 2 of T: output of the cell after '2. Bare figures'",
        "Figure 3 of T: output of the cell after '2. Bare figures'"]
    page = site._add_alts(f'<img src="data:image/png;base64,{PNG}"><img alt="" src="z.png">',
                          {PNG: "Figure 1 of T: a ramp"}, "T")
    assert page == ('<img alt="Figure 1 of T: a ramp" src="data:image/png;base64,' + PNG
                    + '"><img alt="Image 2 of T" src="z.png">')


def test_the_link_checker_reports_dead_relative_links_only(tmp_path):
    books, out = tmp_path / "notebooks", tmp_path / "site"
    books.mkdir()
    out.mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("seed")
    (out / "index.html").write_text('<a href="01_a.html#top">a</a> <a href="#x">here</a>')
    (out / "01_a.html").write_text(
        '<a href="index.html">c</a> <a href="../docs/notes.txt">seed</a> '
        '<a href="https://example.org/x">web</a> <img src="data:image/png;base64,AA"> '
        '<a href="mailto:a@b.c">m</a> <a href="../docs/gone.txt">gone</a> '
        '<img alt="x" src="figs/missing.png"> <a href="02_b.html">next</a>')
    assert site.check_links(out, books) == [
        "01_a.html: ../docs/gone.txt", "01_a.html: figs/missing.png", "01_a.html: 02_b.html"]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A site of two tiny notebooks: figures, path-printing outputs and one dead link."""
    base = tmp_path_factory.mktemp("book")
    books = base / "nb"
    books.mkdir()
    (base / "docs").mkdir()
    (base / "docs" / "notes.txt").write_text("the seeds")
    (books / "where.txt").write_text(f"{site.REPO}/data/words/yes.wav")
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    _notebook(books / "01_first.ipynb",
              md("# 01 · First steps in sound\n\nA page with a figure; see "
                 "[the seeds](../docs/notes.txt).\n\n## 1. A ramp"),
              code("%matplotlib inline\nimport matplotlib.pyplot as plt\n"
                   "fig, ax = plt.subplots(figsize=(2, 1))\nax.plot([0, 1])\n"
                   "ax.set(title='A rising ramp', xlabel='time (s)', ylabel='amplitude')\n"
                   "plt.show()"),
              md("## 2. Where it ran"),
              code("import os, socket, sys\nprint(open('where.txt').read())\n"
                   "print(os.getcwd(), sys.executable, socket.gethostname())\n"
                   "print('/' + 'home/ann/runs/ckpt.pt')\n"
                   "fig, ax = plt.subplots(figsize=(2, 1))\nplt.show()"))
    _notebook(books / "02_second.ipynb",
              md("# 02 · Second steps\n\nBack to [the first](01_first.ipynb) and a "
                 "[dead link](../docs/gone.txt)."),
              code("import os\nos.getcwd()"))
    out = base / "site"
    lines: list[str] = []
    results = site.build_site(out, site.find_notebooks(books), timeout=120, log=lines.append)
    return out, books, results, lines


def _without_data(page: str) -> str:
    return re.sub(r"data:[^\"'\s)]+", "data:…", page)


@pytest.mark.slow
def test_pages_have_the_notebook_title_and_alt_text_on_every_image(book):
    out, _, results, _ = book
    assert [r.error for r in results] == [None, None]
    first = (out / "01_first.html").read_text()
    second = (out / "02_second.html").read_text()
    assert "<title>First steps in sound</title>" in first
    assert "<title>Second steps</title>" in second
    imgs = re.findall(r"<img\b[^>]*>", first, re.S)
    assert len(imgs) == results[0].figures == 2
    alts = [html.unescape(re.search(r'\salt="([^"]*)"', tag)[1]) for tag in imgs]
    assert alts == [
        "Figure 1 of First steps in sound: A rising ramp (axes: time (s), amplitude)",
        "Figure 2 of First steps in sound: output of the cell after '2. Where it ran'"]
    for page in out.glob("*.html"):
        for tag in re.findall(r"<img\b[^>]*>", page.read_text(), re.S):
            assert re.search(r'\salt="[^"]+"', tag), f"{page.name}: {tag[:80]}"


@pytest.mark.slow
def test_no_page_shows_a_machine_path_or_name(book):
    out, _, _, _ = book
    first = (out / "01_first.html").read_text()
    assert "&lt;repo&gt;/data/words/yes.wav" in first and "&lt;home&gt;/…/ckpt.pt" in first
    host = socket.gethostname().split(".")[0]
    for page in out.glob("*.html"):
        text = _without_data(page.read_text())
        for folder in ("/work/", "/root/", "/home/", "/tmp/", str(site.REPO)):
            assert folder not in text, f"{page.name} shows {folder}"
        if len(host) >= 4:
            assert host not in text, f"{page.name} shows the host name"


@pytest.mark.slow
def test_every_page_links_to_its_neighbours_and_the_contents(book):
    out, _, _, _ = book

    def nav(name: str) -> list[list[tuple[str, str]]]:
        page = (out / name).read_text()
        navs = re.findall(r'<nav\b[^>]*class="site-nav[^"]*"[^>]*>(.*?)</nav>', page, re.S)
        return [[(re.search(r'class="site-(\w+)"', a)[1], re.search(r'href="([^"]+)"', a)[1])
                 for a in re.findall(r"<a\b[^>]*>", n)] for n in navs]

    first, second = nav("01_first.html"), nav("02_second.html")
    assert len(first) == len(second) == 2  # at the top and at the foot
    assert first[0] == first[1] == [("prev", "index.html"), ("contents", "index.html"),
                                    ("next", "02_second.html")]
    assert second[0] == second[1] == [("prev", "01_first.html"), ("contents", "index.html"),
                                      ("next", "index.html")]
    assert "Next: Second steps →" in (out / "01_first.html").read_text()


@pytest.mark.slow
def test_a_dead_relative_link_is_reported_and_the_live_ones_resolve(book):
    out, books, results, lines = book
    assert [r.dead_links for r in results] == [[], ["../docs/gone.txt"]]
    assert "02_second.html: dead link ../docs/gone.txt" in lines
    assert site.check_links(out, books) == [  # the index repeats the page's first paragraph
        "02_second.html: ../docs/gone.txt", "index.html: ../docs/gone.txt"]
    assert 'href="../docs/notes.txt"' in (out / "01_first.html").read_text()


# --------------------------------------------------------------------------------------------
# A real browser on the real notebooks
# --------------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
REQUIRED = os.environ.get("VQVAE_REQUIRE_BROWSER") == "1"


def _browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -r requirements.txt)"
    if CHROMIUM is None or CHROMEDRIVER is None:
        return ("headless Chromium is not installed (Debian: apt-get install chromium "
                "chromium-driver; .ci/run installs them)")
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _browser_missing()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"VQVAE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="vqvae-chromium-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def served_site(tmp_path_factory):
    """The site of notebooks 01 and 02, built by the command and served on localhost."""
    if _browser_missing() is not None and not REQUIRED:
        pytest.skip(_browser_missing())
    out = tmp_path_factory.mktemp("site")
    assert site.main([str(out), "--notebooks", str(ROOT / "notebooks"), "--only", "01", "02"]) == 0

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


# Waits for every <audio> to load its metadata (or fail), then reports audio and images.
_INSPECT = """
const done = arguments[arguments.length - 1];
const audios = [...document.querySelectorAll('audio')];
const settle = a => new Promise(resolve => {
  if (a.readyState >= 1 || a.error) return resolve();
  a.addEventListener('loadedmetadata', resolve, {once: true});
  a.addEventListener('error', resolve, {once: true});
  a.preload = 'metadata';
  a.load();
});
Promise.all(audios.map(settle)).then(() => done({
  audio: audios.map(a => ({duration: a.duration, error: a.error ? a.error.code : null})),
  images: [...document.images].map(i => ({width: i.naturalWidth, alt: i.alt})),
  links: [...document.querySelectorAll('a')].map(a => a.getAttribute('href')),
  height: document.documentElement.scrollHeight,
}));
"""

SCREENSHOTS = Path(tempfile.gettempdir()) / "vqvae-site-screenshots"


def _inspect(browser, url: str) -> tuple[dict, list[str]]:
    """Open a page; return what it holds and every problem: console errors, players that did
    not load a sound with a positive duration, images with no width."""
    browser.get(url)
    seen = browser.execute_async_script(_INSPECT)
    problems = [f"console: {e['message']}" for e in browser.get_log("browser")
                if e["level"] == "SEVERE"]
    problems += [f"audio {i}: error {a['error']}, duration {a['duration']}"
                 for i, a in enumerate(seen["audio"])
                 if a["error"] is not None or not (a["duration"] or 0) > 0]
    problems += [f"image {i} ({im['alt']}) did not load" for i, im in enumerate(seen["images"])
                 if not im["width"] > 0]
    return seen, problems


@pytest.mark.browser
def test_the_browser_check_catches_a_broken_player_image_and_script(served_site, browser):
    """The check itself can fail: a page with a corrupt sound, a missing image and a script
    error gives one problem each (and a good player and figure give none)."""
    out, base = served_site
    good_png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAA"
                "AABJRU5ErkJggg==")
    (out / "broken.html").write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<audio controls src="data:audio/wav;base64,AAAAAAAA"></audio>'
        f'<img alt="fine" src="data:image/png;base64,{good_png}">'
        '<img alt="gone" src="no-such-figure.png">'
        "<script>undefinedFunction();</script></body></html>")
    try:
        seen, problems = _inspect(browser, f"{base}/broken.html")
    finally:
        (out / "broken.html").unlink()
    assert len(seen["audio"]) == 1 and len(seen["images"]) == 2
    assert any(p.startswith("audio 0") for p in problems), problems
    assert any("image 1 (gone)" in p for p in problems), problems
    assert any("undefinedFunction" in p for p in problems), problems
    assert not any("(fine)" in p for p in problems), problems


@pytest.mark.browser
@pytest.mark.slow
def test_pages_play_every_sound_and_show_every_figure_in_headless_chromium(served_site, browser):
    out, base = served_site
    SCREENSHOTS.mkdir(exist_ok=True)
    pages = ["index.html", "01_signal_processing.html", "02_vq_vae.html"]
    assert sorted(p.name for p in out.glob("*.html")) == sorted(pages)
    report = {}
    for page in pages:
        seen, problems = _inspect(browser, f"{base}/{page}")
        shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": min(seen["height"], 12000),
                     "scale": 1}})
        (SCREENSHOTS / f"{Path(page).stem}.png").write_bytes(base64.b64decode(shot["data"]))
        report[page] = {"audio": len(seen["audio"]), "images": len(seen["images"])}

        assert not problems, f"{page}: {problems}"
        if page == "index.html":
            assert [h for h in seen["links"] if h.endswith(".html")] == pages[1:]
        else:  # a page with nothing to check would pass vacuously
            assert seen["audio"] and seen["images"], f"{page}: no player or no figure"
            assert "index.html" in seen["links"]
    print(f"\nscreenshots in {SCREENSHOTS}; checked {json.dumps(report)}")

"""The HTML book (`make book`): built from small executed notebooks the tests write, then read in Chromium.

The book of the real notebooks is built and read at the end of tests/test_notebooks.py, from the copies the
notebook tests executed."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402

from merlib.book import BookError, browse_book, build_book, count_equations  # noqa: E402

CHAPTERS = ["00_alpha.ipynb", "01_beta.ipynb"]


def _png() -> str:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [0, 1, 4])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _chapter(number: int, name: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    md = nbformat.v4.new_markdown_cell
    code = nbformat.v4.new_code_cell
    params = code("SHOW_SOLUTIONS = False", metadata={"tags": ["parameters"]})
    injected = code("SHOW_SOLUTIONS = True\nQUICK = True\n", metadata={"tags": ["injected-parameters"]})
    figure = code("plt.plot(x)", outputs=[nbformat.v4.new_output(
        "display_data", data={"image/png": _png(), "text/plain": "<Figure>"})], execution_count=1)
    widget = code("lab", outputs=[nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "text/plain": "VBox(children=(...))"})], execution_count=2)
    audio = code("Audio(x, rate=16000)", outputs=[nbformat.v4.new_output("display_data", data={
        "text/html": '<audio controls="controls"><source src="data:audio/wav;base64,UklGRg==" '
                     'type="audio/wav"/></audio>', "text/plain": "<Audio>"})], execution_count=3)
    solution = code("if SHOW_SOLUTIONS:\n    print(42)", outputs=[nbformat.v4.new_output(
        "stream", name="stdout", text="42\n")], execution_count=4)
    nb.cells = [
        md(f"# {number:02d} · Chapter {name}\n\nThe loss $\\ell = -\\log p_y$ and\n\n"
           "$$\nT_{60} = \\frac{24 \\ln 10 \\, V}{c \\, S \\, \\alpha}\n$$\n\n"
           "Next: [the other chapter](01_beta.ipynb); code in [the builder](../merlib/book.py); "
           "theory in [the docs](../docs/room-acoustics.md#3-critical-distance); "
           "[the paper](https://arxiv.org/abs/2409.09545)."),
        params, injected, figure, widget, audio,
        md("**Exercise 1.** What is 6 × 7?"), solution,
    ]
    nb.metadata["papermill"] = {"parameters": {"SHOW_SOLUTIONS": True, "QUICK": True, "SEED": 0}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    nbs = tmp_path / "outputs" / "notebooks"
    nbs.mkdir(parents=True)
    for i, name in enumerate(CHAPTERS):
        nbformat.write(_chapter(i, name.split("_")[1].split(".")[0]), nbs / name)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "room-acoustics.md").write_text("# Room acoustics\n\n## 3. Critical distance\n\n"
                                             "$$\nd_c = \\sqrt{\\frac{\\gamma A}{16\\pi}}\n$$\n")
    (tmp_path / "shot.png").write_bytes(base64.b64decode(_png()))
    readme = tmp_path / "README.md"
    readme.write_text("# merlib\n\nThe introduction.\n\n![a figure](shot.png)\n\n## Two commands\n\nNot in the book."
                      "\n\n## The book\n\n`make book` builds it.\n")
    return {"notebooks": nbs, "docs": docs, "readme": readme, "out": tmp_path / "outputs" / "book"}


def _build(s: dict[str, Path], **kw):
    return build_book(s["notebooks"], s["out"], readme=s["readme"], docs_dir=s["docs"], expected=CHAPTERS, **kw)


def test_pages_navigation_links_and_counts(sources):
    report = _build(sources)
    out = sources["out"]
    assert [p.file for p in report.pages] == ["index.html", "00_alpha.html", "01_beta.html",
                                              "docs_room-acoustics.html"]
    front = (out / "index.html").read_text()
    assert "The introduction." in front and "make book" in front and "Not in the book." not in front
    assert (out / "shot.png").exists() and 'href="00_alpha.html"' in front
    page = (out / "00_alpha.html").read_text()
    # sidebar with every page, the current one marked; previous/next
    assert page.count('class="book-current chapter"') == 1 and 'href="docs_room-acoustics.html"' in page
    assert 'class="book-prev" href="index.html"' in page and 'class="book-next" href="01_beta.html"' in page
    # links: chapters and docs to their pages, source files as repository paths, the web left alone
    assert 'href="01_beta.html"' in page and 'href="docs_room-acoustics.html#3-critical-distance"' in page
    assert 'title="in the merlib repository: merlib/book.py"' in page and "../merlib/book.py" not in page
    assert 'href="https://arxiv.org/abs/2409.09545"' in page
    # nothing from a CDN: every script is served with the book
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page)
    assert scripts and all(not s.startswith(("http:", "https:", "//")) for s in scripts), scripts
    assert (out / "_static/mathjax/MathJax.js").exists()
    assert (out / "_static/mathjax/config/TeX-AMS-MML_HTMLorMML-full.js").exists()
    # the solution folded, the widget a note, papermill's injected cell replaced by a banner
    assert '<details class="book-solution"><summary>Solution</summary>' in page
    assert "Interactive widget." in page and "VBox(children" not in page
    assert "QUICK = True" in page and "injected-parameters" not in page
    manifest = json.loads((out / "book.json").read_text())
    alpha = manifest["pages"][1]
    assert (alpha["n_images"], alpha["n_equations"], alpha["n_widgets"], alpha["n_audio"], alpha["n_solutions"]) \
        == (1, 2, 1, 1, 1)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".book.")]


def test_count_equations():
    assert count_equations("a $x$ and $$\ny = 1\n$$ but `$not$` and ```\n$no$\n```, costs \\$5") == 2
    assert count_equations("$a_{ij}$, $b$, no math in 5 $ and") == 2


def test_missing_chapter_is_refused_before_anything_is_written(sources):
    (sources["notebooks"] / "01_beta.ipynb").unlink()
    with pytest.raises(BookError, match=r"01_beta\.ipynb.*make reproduce"):
        _build(sources)
    assert not sources["out"].exists()


def test_a_bad_notebook_leaves_the_previous_book_as_it_was(sources):
    _build(sources)
    before = (sources["out"] / "index.html").read_text()
    (sources["notebooks"] / "01_beta.ipynb").write_text("{ truncated")
    with pytest.raises(BookError, match=r"01_beta\.ipynb"):
        _build(sources)
    assert (sources["out"] / "index.html").read_text() == before
    assert sorted(p.name for p in sources["out"].parent.iterdir()) == ["book", "notebooks"]


def test_unexecuted_or_failed_notebooks_are_refused(sources):
    nb = nbformat.read(sources["notebooks"] / "00_alpha.ipynb", as_version=4)
    nb.metadata["papermill"]["exception"] = True
    nbformat.write(nb, sources["notebooks"] / "00_alpha.ipynb")
    with pytest.raises(BookError, match="stopped with an error"):
        _build(sources)
    for cell in nb.cells:
        cell.pop("outputs", None) if cell.cell_type != "code" else cell.update(outputs=[])
    nb.metadata["papermill"]["exception"] = False
    nbformat.write(nb, sources["notebooks"] / "00_alpha.ipynb")
    with pytest.raises(BookError, match="never executed"):
        _build(sources)


def test_an_output_folder_that_is_not_a_book_is_refused(sources):
    sources["out"].mkdir(parents=True)
    (sources["out"] / "thesis.tex").write_text("mine")
    with pytest.raises(BookError, match="does not hold a merlib book"):
        _build(sources)
    assert (sources["out"] / "thesis.tex").read_text() == "mine"


def test_cli_without_executed_notebooks_names_them_and_the_fix(tmp_path):
    run = subprocess.run([sys.executable, "-m", "merlib", "book", "--outputs", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "00_data_tour.ipynb" in run.stderr and "make reproduce" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "book").exists()


@pytest.mark.browser
@pytest.mark.slow
def test_the_book_renders_in_chromium(sources, chromium, tmp_path):
    _build(sources)
    pages = browse_book(sources["out"], tmp_path / "shots", chromium=chromium)
    assert [p["file"] for p in pages] == ["index.html", "00_alpha.html", "01_beta.html", "docs_room-acoustics.html"]
    for p in pages:
        assert p["status"] == 200 and not p["failed_requests"] and not p["page_errors"], p
        assert not p["broken_links"] and p["sidebar"] == 4, p
        assert all(i["complete"] and min(i["natural"]) > 0 for i in p["images"]), p["images"]
        assert all(min(i["box"]) > 0 for i in p["images"] if i["shown"])
        assert p["math"] == p["expected"]["n_equations"] and p["math_errors"] == 0 and p["raw_display_math"] == 0
        assert Path(p["screenshots"][0]).stat().st_size > 10_000
    assert pages[1]["math"] == 2 and len(pages[1]["images"]) == 1 and pages[1]["audio"] == 1
    assert pages[1]["solutions"] == 1 and pages[1]["widgets"] == 1 and pages[3]["math"] == 1
    assert len(pages[0]["images"]) == 1  # the README's picture

"""The tutorial as a static HTML book, built from the notebooks ``make reproduce`` executed.

    merlib book [--outputs outputs] [--out outputs/book] [--reproduce-if-missing]

One page per numbered notebook (``outputs/notebooks/NN_*.ipynb``), in order, rendered by nbconvert's
JupyterLab template (:data:`TEMPLATE_DIR` extends it) with every figure, table and printed output the run made;
the README's introduction is the front page, and the repository's ``docs/*.md`` are pages too, so links to them
work. What the book adds to the plain nbconvert page:

- a chapter sidebar and previous/next links on every page;
- equations typeset by a copy of MathJax 2.7 served with the book (from the ``jupyter-server-mathjax`` package),
  so the book reads offline and nothing loads from a CDN;
- exercise solutions (code cells starting ``if SHOW_SOLUTIONS:``) folded under a "Solution" summary;
- interactive widgets, whose state a papermill run does not keep, replaced by a note to open the notebook in
  JupyterLab; audio players (``IPython.display.Audio``) keep their embedded sound and play in the page;
- links to other notebooks and docs pointed at their pages; links to source files shown as repository paths.

The build writes into a temporary folder beside ``out`` and renames it into place only when every page is done,
so an interrupted build never leaves a half-built book, and an existing book stays as it was.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from .errors import MerlibError

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = Path(__file__).resolve().parent / "book_template"
TEMPLATE_NAME = "merlib_book"
CHAPTER_PATTERN = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.ipynb$")
SOLUTION_PREFIX = "if SHOW_SOLUTIONS:"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ('<div class="book-widget"><strong>Interactive widget.</strong> Its controls need a live Python '
               'kernel: open this notebook in JupyterLab (<code>make lab</code>) to use it. The figures above and '
               'below it are what the run drew.</div>')
MATHJAX_URL = "_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
#: The parts of MathJax 2.7 the book's configuration loads (the whole package holds 12 MB, most of it translations).
MATHJAX_PARTS = ("MathJax.js", "config", "extensions", "jax/input/TeX", "jax/output/HTML-CSS", "jax/element",
                 "fonts/HTML-CSS", "localization/en", "LICENSE")

CSS = """
body.jp-Notebook { display: block; margin: 0; padding: 0; }
.book-sidebar { position: fixed; top: 0; left: 0; bottom: 0; width: 250px; overflow-y: auto; padding: 16px 12px;
  box-sizing: border-box; background: #f6f7f9; border-right: 1px solid #dde1e6; font: 14px/1.4 system-ui, sans-serif; }
.book-sidebar, .book-sidebar *, .book-pager, .book-banner { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
.book-sidebar .book-title { display: block; font-weight: 700; font-size: 18px; margin-bottom: 12px; color: #1a1a1a;
  text-decoration: none; }
.book-toc { list-style: none; padding: 0; margin: 0; }
.book-toc li { margin: 2px 0; }
.book-toc li a { display: block; padding: 4px 8px; border-radius: 4px; color: #24292f; text-decoration: none; }
.book-toc li a:hover { background: #e6e9ee; }
.book-toc li.book-current a { background: #dbe7fb; font-weight: 600; }
.book-toc li.doc { font-size: 13px; }
.book-toc li.doc:first-of-type, .book-toc li.chapter + li.doc { margin-top: 14px; border-top: 1px solid #dde1e6;
  padding-top: 8px; }
.book-content { margin-left: 250px; padding: 8px 24px 48px; max-width: 1100px; box-sizing: border-box; }
.book-content main { padding: 0; }
.book-pager { display: flex; justify-content: space-between; gap: 12px; margin: 12px 0;
  font: 14px system-ui, sans-serif; }
.book-pager a { color: #0b57d0; text-decoration: none; }
.book-banner { font: 13px system-ui, sans-serif; color: #57606a; background: #f6f8fa; border: 1px solid #dde1e6;
  border-radius: 6px; padding: 6px 10px; margin: 0 0 8px; }
.book-solution { border: 1px solid #cfd6df; border-radius: 6px; margin: 6px 0; padding: 2px 8px; }
.book-solution > summary { cursor: pointer; font: 600 14px system-ui, sans-serif; color: #0b57d0; padding: 4px 0; }
.book-widget { border: 1px dashed #9aa5b1; border-radius: 6px; padding: 8px 12px; background: #fbfbfd;
  font: 14px system-ui, sans-serif; }
.repo-path { font-family: ui-monospace, monospace; font-size: 90%; }
.jp-OutputArea-output img { max-width: 100%; height: auto; }
@media (max-width: 900px) {
  .book-sidebar { position: static; width: auto; border-right: 0; border-bottom: 1px solid #dde1e6; }
  .book-content { margin-left: 0; }
}
"""


class BookError(MerlibError, ValueError):
    """The book cannot be built from what is on disk; the message names the file and the fix."""


@dataclass
class Page:
    """One page of the book."""

    file: str
    title: str
    kind: str  # "front", "chapter" or "doc"
    source: str
    n_images: int = 0
    n_equations: int = 0
    n_widgets: int = 0
    n_audio: int = 0
    n_solutions: int = 0


@dataclass
class BookReport:
    out: str
    pages: list[Page] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def chapters(self) -> list[Page]:
        return [p for p in self.pages if p.kind == "chapter"]


# ---------------------------------------------------------------------------------------------- reading


def executed_chapters(notebooks_dir: str | os.PathLike) -> list[Path]:
    """The executed numbered notebooks ``NN_name.ipynb`` in ``notebooks_dir``, in order."""
    d = Path(notebooks_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if CHAPTER_PATTERN.match(p.name))


def missing_chapters(notebooks_dir: str | os.PathLike, expected: list[str] | None = None) -> list[str]:
    """Names of the repository's numbered notebooks that have no executed copy in ``notebooks_dir``."""
    if expected is None:
        from .reproduce import notebook_paths

        expected = [p.name for p in notebook_paths()]
    have = {p.name for p in executed_chapters(notebooks_dir)}
    return [name for name in expected if name not in have]


def _read_executed(path: Path) -> nbformat.NotebookNode:
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises several types for unreadable JSON
        raise BookError(f"{path}: not a readable notebook ({err}); run `make reproduce` to execute it again") from None
    pm = nb.metadata.get("papermill", {})
    if pm.get("exception"):
        raise BookError(f"{path}: its execution stopped with an error; fix the notebook and run `make reproduce`")
    if not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
        raise BookError(f"{path}: has no outputs, so it was never executed; run `make reproduce` to execute it")
    return nb


def _title(nb: nbformat.NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, flags=re.M)
            if m:
                return m.group(1).strip()
    return fallback


def readme_introduction(readme: str) -> str:
    """The README up to its first second-level heading, plus its ``## The book`` section if there is one."""
    parts = re.split(r"(?m)^(?=## )", readme)
    intro = parts[0]
    for part in parts[1:]:
        if part.startswith("## The book"):
            intro += "\n" + part
    return intro


_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\$)([^$\n]+?)(?<!\\)\$", re.S)


def count_equations(markdown: str) -> int:
    """Display (``$$…$$``) and inline (``$…$``) formulas in a markdown text, code spans and blocks left out."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return len(_MATH.findall(text))


# ---------------------------------------------------------------------------------------------- preparing


def _prepare_chapter(nb: nbformat.NotebookNode, page: Page) -> dict[str, Any]:
    """Tag solutions, replace stateless widgets, drop papermill's injected cell; returns the run's parameters."""
    injected: dict[str, Any] = {}
    cells = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags:
            injected = nb.metadata.get("papermill", {}).get("parameters", {})
            continue
        if cell.cell_type == "markdown":
            page.n_equations += count_equations(cell.source)
        if cell.cell_type == "code":
            if cell.source.lstrip().startswith(SOLUTION_PREFIX):
                cell.metadata["tags"] = [*tags, "solution"]
                page.n_solutions += 1
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if WIDGET_MIME in data:
                    out["data"] = {"text/html": WIDGET_NOTE}
                    page.n_widgets += 1
                    continue
                page.n_images += sum(1 for k in data if k.startswith("image/"))
                page.n_audio += str(data.get("text/html", "")).count("<audio")
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("widgets", None)  # no widget manager from a CDN: the widgets are notes now
    return injected


def _markdown_page(title: str, markdown: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["title"] = title
    nb.cells = [nbformat.v4.new_markdown_cell(markdown)]
    return nb


_ANCHOR = re.compile(r'<a href="(?P<href>[^"]*)"(?P<rest>[^>]*)>(?P<text>.*?)</a>', re.S)


def _rewrite_links(page_html: str, targets: dict[str, str]) -> str:
    """Point links at book pages; show links to files the book does not hold as repository paths.

    ``targets`` maps a file name as the sources write it (``02_reverberant_corpus.ipynb``, ``room-acoustics.md``)
    to its page. External links (``http…``, ``mailto:``) and in-page anchors are left alone."""

    def fix(m: re.Match) -> str:
        href = html.unescape(m.group("href"))
        if not href or href.startswith(("#", "data:")) or re.match(r"^[a-z][a-z0-9+.-]*:", href):
            return m.group(0)
        path, _, anchor = href.partition("#")
        parts = path.rstrip("/").split("/")
        name = "/".join(parts[-2:]) if "/".join(parts[-2:]) in targets else parts[-1]
        if name in targets:
            new = targets[name] + (f"#{anchor}" if anchor else "")
            return f'<a href="{html.escape(new)}"{m.group("rest")}>{m.group("text")}</a>'
        repo_path = os.path.normpath(path).lstrip("./")  # "../merlib/x.py" -> "merlib/x.py"
        return (f'<span class="repo-path" title="in the merlib repository: {html.escape(repo_path)}">'
                f'{m.group("text")}</span>')

    return _ANCHOR.sub(fix, page_html)


def _copy_mathjax(static_dir: Path) -> None:
    try:
        import jupyter_server_mathjax
    except ImportError:  # a pinned dependency: a broken install, not a choice
        raise BookError("the book needs the jupyter-server-mathjax package (a merlib dependency); "
                        "reinstall merlib: pip install -e '.[dev]'") from None
    src = Path(jupyter_server_mathjax.__file__).resolve().parent / "static"
    dst = static_dir / "mathjax"
    for part in MATHJAX_PARTS:
        s = src / part
        if s.is_dir():
            shutil.copytree(s, dst / part)
        else:
            (dst / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, dst / part)


# ---------------------------------------------------------------------------------------------- building


def build_book(
    notebooks_dir: str | os.PathLike = "outputs/notebooks",
    out_dir: str | os.PathLike = "outputs/book",
    *,
    readme: str | os.PathLike | None = None,
    docs_dir: str | os.PathLike | None = None,
    expected: list[str] | None = None,
    title: str = "merlib",
) -> BookReport:
    """Build the HTML book from executed notebooks; returns what each page holds (also in ``book.json``).

    ``expected`` lists the notebook file names the book must hold (default: every numbered notebook of the
    repository); a missing one raises :class:`BookError` naming it, before anything is written."""
    from nbconvert import HTMLExporter

    t0 = time.time()
    notebooks_dir, out = Path(notebooks_dir), Path(out_dir)
    readme = Path(readme) if readme is not None else REPO_ROOT / "README.md"
    docs = Path(docs_dir) if docs_dir is not None else REPO_ROOT / "docs"
    missing = missing_chapters(notebooks_dir, expected)
    if missing:
        raise BookError(f"{notebooks_dir}: no executed copy of {', '.join(missing)}; "
                        "run `make reproduce` first (or `merlib book --reproduce-if-missing`)")
    if out.exists() and not out.is_dir():
        raise BookError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / "book.json").exists():
        raise BookError(f"{out}: a folder that does not hold a merlib book; choose another --out or empty it")

    names = expected if expected is not None else [p.name for p in executed_chapters(notebooks_dir)]
    chapters = [notebooks_dir / name for name in names]
    report = BookReport(out=str(out))
    from .reproduce import NOTEBOOK_DIR

    for path in chapters:  # an executed copy older than its source shows an old version of the chapter
        src = NOTEBOOK_DIR / path.name
        if src.exists() and src.stat().st_mtime > path.stat().st_mtime + 1:
            report.warnings.append(f"{path} is older than {src}: the page shows the last run; "
                                   "run `make reproduce` to refresh it")

    # pages: front, chapters, docs
    notebooks = {p.name: _read_executed(p) for p in chapters}
    pages: list[tuple[Page, nbformat.NotebookNode]] = []
    front_md = readme_introduction(readme.read_text()) if readme.exists() else f"# {title}\n"
    pages.append((Page("index.html", title, "front", str(readme)), None))  # filled once the titles are known
    for p in chapters:
        nb = notebooks[p.name]
        page = Page(p.with_suffix(".html").name, _title(nb, p.stem), "chapter", str(p))
        pages.append((page, nb))
    doc_files = sorted(docs.glob("*.md")) if docs.is_dir() else []
    for d in doc_files:
        text = d.read_text()
        page = Page(f"docs_{d.stem}.html", _title(_markdown_page("", text), d.stem), "doc", str(d))
        page.n_equations = count_equations(text)
        pages.append((page, _markdown_page(page.title, text)))

    toc_md = "\n## Chapters\n\n" + "".join(
        f"{i}. [{pg.title}]({pg.file})\n" for i, (pg, _) in enumerate((x for x in pages if x[0].kind == "chapter"), 1))
    if doc_files:
        toc_md += "\n## Reference docs\n\n" + "".join(f"- [{pg.title}]({pg.file})\n"
                                                        for pg, _ in pages if pg.kind == "doc")
    front = _markdown_page(title, front_md + toc_md)
    pages[0] = (pages[0][0], front)
    pages[0][0].n_equations = count_equations(front_md)

    targets = {pg.file: pg.file for pg, _ in pages}  # the book's own pages (sidebar, pager, chapter list)
    targets["README.md"] = "index.html"
    targets.update({Path(pg.source).name: pg.file for pg, _ in pages if pg.kind == "chapter"})
    targets.update({f"docs/{Path(pg.source).name}": pg.file for pg, _ in pages if pg.kind == "doc"})
    targets.update({Path(pg.source).name: pg.file for pg, _ in pages  # a doc's links to its neighbours
                    if pg.kind == "doc" and Path(pg.source).name != "README.md"})

    exporter = HTMLExporter(template_name=TEMPLATE_NAME, extra_template_basedirs=[str(TEMPLATE_DIR)])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        _copy_mathjax(tmp / "_static")
        readme_images = set(re.findall(r"!\[[^\]]*\]\(([^)\s]+\.(?:png|jpg|jpeg|svg|gif))\)", front_md))
        for rel in readme_images:
            src = readme.parent / rel
            if src.exists():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, tmp / rel)
                pages[0][0].n_images += 1
        for i, (page, nb) in enumerate(pages):
            banner = ""
            if page.kind == "chapter":
                params = _prepare_chapter(nb, page)
                if params:
                    shown = ", ".join(f"{k} = {v!r}" for k, v in params.items() if k in ("QUICK", "SEED"))
                    banner = (f"Executed by <code>make reproduce</code> ({html.escape(shown)}); the outputs below "
                              "are that run's. Open the notebook in JupyterLab to change and rerun it.")
            resources = {"book": {
                "title": title,
                "mathjax_url": MATHJAX_URL,
                "css": CSS,
                "toc": [{"href": pg.file, "label": pg.title, "current": j == i, "kind": pg.kind}
                        for j, (pg, _) in enumerate(pages)],
                "pager": _pager(pages, i),
                "banner": banner,
            }}
            body, _ = exporter.from_notebook_node(nb, resources=resources)
            body = _rewrite_links(body, targets)
            (tmp / page.file).write_text(body, encoding="utf-8")
            report.pages.append(page)
        report.seconds = round(time.time() - t0, 1)
        manifest = {**asdict(report), "built": time.strftime("%Y-%m-%d %H:%M:%S")}
        (tmp / "book.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _pager(pages: list[tuple[Page, Any]], i: int) -> str:
    prev_link = next_link = "<span></span>"
    if i > 0:
        pg = pages[i - 1][0]
        prev_link = f'<a class="book-prev" href="{pg.file}">← {html.escape(pg.title)}</a>'
    if i + 1 < len(pages):
        pg = pages[i + 1][0]
        next_link = f'<a class="book-next" href="{pg.file}">{html.escape(pg.title)} →</a>'
    return f'<div class="book-pager">{prev_link}{next_link}</div>'


# ---------------------------------------------------------------------------------------------- reading it in a browser

CHROMIUM_INSTALL = "apt-get install -y chromium   (Debian/Ubuntu; or set MERLIB_CHROMIUM to a Chrome/Chromium binary)"
#: Flags for a headless Chromium on a closed network: no first-run, sync or background fetches, no GPU.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

_PAGE_PROBE = """() => {
  const shown = el => !el.closest('details:not([open])');
  const imgs = [...document.images].map(i => {
    const r = i.getBoundingClientRect();
    return {complete: i.complete, natural: [i.naturalWidth, i.naturalHeight], shown: shown(i), box: [r.width, r.height]};
  });
  const jax = window.MathJax && MathJax.Hub ? MathJax.Hub.getAllJax() : [];
  const markdown = [...document.querySelectorAll('.jp-RenderedMarkdown')].map(e => e.innerText).join('\\n');
  return {
    title: document.title,
    images: imgs,
    math: jax.length,
    math_errors: jax.filter(j => j.texError).length + document.querySelectorAll('.MathJax_Error, .merror').length,
    raw_display_math: (markdown.match(/\\$\\$/g) || []).length,
    audio: document.querySelectorAll('audio').length,
    solutions: document.querySelectorAll('details.book-solution').length,
    widgets: document.querySelectorAll('.book-widget').length,
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    sidebar: document.querySelectorAll('.book-toc li').length,
  };
}"""


def find_chromium() -> str | None:
    """A Chromium/Chrome binary: ``$MERLIB_CHROMIUM``, else ``chromium``/``chromium-browser``/``google-chrome`` on PATH."""
    env = os.environ.get("MERLIB_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browse_book(
    book_dir: str | os.PathLike,
    screenshots_dir: str | os.PathLike | None = None,
    *,
    chromium: str | None = None,
    viewport: tuple[int, int] = (1280, 900),
    timeout_s: float = 60.0,
) -> list[dict[str, Any]]:
    """Open every page of a built book in headless Chromium, served over loopback HTTP, and report what rendered.

    Per page: HTTP status, each image (decoded size, on-screen size, hidden in a folded solution or not), the
    formulas MathJax typeset and those it could not, ``$$`` left untypeset, audio players, links, requests that
    failed (the book must need nothing from the network) and script errors. With ``screenshots_dir``, saves
    ``<page>.png`` (the top of the page) and, for pages with figures, ``<page>-figure.png`` (the first figure)."""
    import functools
    import http.server
    import threading

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BookError("reading the book in a browser needs playwright (a merlib dev dependency): "
                        "pip install -e '.[dev]'") from None
    book = Path(book_dir)
    manifest = book / "book.json"
    if not manifest.exists():
        raise BookError(f"{book}: no book.json, so not a built merlib book; run `make book` first")
    chromium = chromium or find_chromium()
    if chromium is None:
        raise BookError(f"no Chromium found for the browser check; install it: {CHROMIUM_INSTALL}")
    pages = json.loads(manifest.read_text())["pages"]
    shots = Path(screenshots_dir) if screenshots_dir is not None else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(book)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    results = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            for entry in pages:
                page = context.new_page()
                failed: list[str] = []
                errors: list[str] = []
                page.on("requestfailed", lambda r, failed=failed: failed.append(r.url)
                        if not r.url.startswith("about:") else None)
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.on("response", lambda r, failed=failed: failed.append(f"{r.status} {r.url}")
                        if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
                response = page.goto(base + entry["file"], wait_until="load", timeout=timeout_s * 1000)
                page.wait_for_function("document.documentElement.dataset.mathjax === 'done'",
                                       timeout=timeout_s * 1000)
                info = page.evaluate(_PAGE_PROBE)
                info.update(file=entry["file"], kind=entry["kind"], expected=entry, status=response.status,
                            failed_requests=failed, page_errors=errors, screenshots=[])
                # MathJax's STIX-Web font data names a TeX font for \\mathcal as a first choice; it is not
                # shipped and MathJax falls back to STIX, so that miss is reported apart from real failures
                info["optional_font_misses"] = [u for u in failed if "/_static/mathjax/fonts/HTML-CSS/TeX/" in u]
                info["failed_requests"] = [u for u in failed if u not in info["optional_font_misses"]]
                info["broken_links"] = [h for h in info["links"] if not re.match(r"^([a-z][a-z0-9+.-]*:|#)", h)
                                        and not (book / h.split("#")[0]).exists()]
                if shots is not None:
                    stem = Path(entry["file"]).stem
                    page.screenshot(path=str(shots / f"{stem}.png"))
                    info["screenshots"].append(str(shots / f"{stem}.png"))
                    figure = page.locator(".jp-OutputArea-output img").first
                    if page.locator(".jp-OutputArea-output img").count() and figure.is_visible():
                        figure.scroll_into_view_if_needed()
                        page.screenshot(path=str(shots / f"{stem}-figure.png"))
                        info["screenshots"].append(str(shots / f"{stem}-figure.png"))
                results.append(info)
                page.close()
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return results

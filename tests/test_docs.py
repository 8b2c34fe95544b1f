"""The repository documents itself: every document it cites is in it, and every cited section exists.

Three checks over the repository's files (``git ls-files``: tracked files plus new files git does not ignore,
i.e. what the next commit can contain; notebooks are read cell by cell):

(a) no file cites development notes that are not part of the repository — their folder, the sections of a
    specification, two reference notes — unless a file of that name is in the repository;
(b) every ``docs/<name>`` path a file mentions exists, and every relative link inside ``docs/*.md`` resolves;
(c) every section cited as ``docs/<file>.md §N`` or ``§N.M`` is a numbered heading of that file.

Skipped, with the reason, outside a git checkout (an installed copy has no docs to check).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

# Names of development notes outside the repository, built from pieces so that this file does not contain
# them. Each maps to the repository path that would make mentioning it legitimate: a folder (trailing "/") or a
# file name.
FORBIDDEN: dict[str, str] = {
    "shared" + "/": "shared" + "/",
    "SPEC" + " §": "SPEC" + ".md",
    "rooms" + ".md": "rooms" + ".md",
    "reference-" + "implementation" + ".md": "reference-" + "implementation" + ".md",
}

# "docs/…" at the start of a path: not preceded by a word character, dot, slash or hyphen (which would make it
# part of a URL such as https://pytorch.org/docs/…), except as "../docs/…" (links from notebooks).
_DOCS_PREFIX = r"(?:(?<=\.\./)|(?<![\w./-]))docs/"
DOCS_PATH = re.compile(_DOCS_PREFIX + r"([\w.*/-]*)")
# A docs page followed (after closing backticks, brackets or parentheses) by one or more section numbers:
# "docs/design.md §5", "docs/room-acoustics.md`` §1.3 and §2.1", "[…](../docs/reference-model.md) §1.4, …".
CITATION = re.compile(
    _DOCS_PREFIX + r"([\w-]+\.md)[`\])]*((?:\s*(?:,|and|or|/|–|-)?\s*§\s*\d+(?:\.\d+)*)+)"
)
SECTION = re.compile(r"§\s*(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{1,6}\s+§?(\d+(?:\.\d+)*)\.?(?:\s|$)")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")


@lru_cache(maxsize=1)
def repo_files() -> tuple[str, ...]:
    """Paths (relative to the repository root) of the files the repository holds or is about to hold."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                                capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"not in a git checkout of merlib (git ls-files failed: {err}); the docs checks need one")
    if Path(top).resolve() != REPO:
        pytest.skip(f"{REPO} is not the root of its git checkout ({top}); the docs checks need merlib's own checkout")
    return tuple(sorted(p for p in listed.decode().split("\0") if p and (REPO / p).is_file()))


def _text(path: str) -> str | None:
    """A file's text, or None for binary files."""
    data = (REPO / path).read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def documents() -> Iterator[tuple[str, str]]:
    """``(label, text)`` for every text file; a notebook gives one item per cell (its source, unescaped)."""
    for path in repo_files():
        text = _text(path)
        if text is None:
            continue
        if path.endswith(".ipynb"):
            try:
                cells = json.loads(text)["cells"]
            except (ValueError, KeyError, TypeError):
                yield path, text  # not valid notebook JSON: check the raw text
                continue
            for i, cell in enumerate(cells):
                source = cell.get("source", "")
                yield f"{path} [cell {i}]", "".join(source) if isinstance(source, list) else str(source)
        else:
            yield path, text


def _where(label: str, text: str, pos: int) -> str:
    return f"{label}:{text.count(chr(10), 0, pos) + 1}"


def _headings(page: Path) -> set[str]:
    """Section numbers of a markdown page's headings ("## 5. Data", "### 1.3 What …"), code blocks left out."""
    numbers, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            numbers.add(match.group(1))
    return numbers


def _in_repo(target: str, files: tuple[str, ...]) -> bool:
    """Whether the repository holds a folder (``target`` ends with "/") or a file of that name."""
    if target.endswith("/"):
        return any(("/" + p).find("/" + target) >= 0 for p in files)
    return any(Path(p).name == target for p in files)


def test_no_file_cites_documents_outside_the_repository():
    files = repo_files()
    allowed = {name for name, target in FORBIDDEN.items() if _in_repo(target, files)}
    found = []
    for label, text in documents():
        for name in FORBIDDEN:
            if name in allowed:
                continue
            for match in re.finditer(re.escape(name), text):
                found.append(f"{_where(label, text, match.start())}: {name!r}")
    assert not found, (
        "files cite documents that are not in the repository (cite docs/design.md, docs/room-acoustics.md, "
        "docs/reference-model.md, the paper or a public source instead):\n" + "\n".join(found)
    )


def test_every_docs_path_exists():
    missing = []
    for label, text in documents():
        for match in DOCS_PATH.finditer(text):
            name = match.group(1).rstrip(".,;:/")
            if "*" in name:
                ok = any(DOCS.glob(name))
            else:
                ok = (DOCS / name).exists()
            if not ok:
                missing.append(f"{_where(label, text, match.start())}: docs/{name}")
    # relative links inside the docs pages
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in MD_LINK.finditer(text):
            target = match.group(1).split("#", 1)[0]
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # an anchor or a URL
            if not (page.parent / target).exists():
                missing.append(f"{_where(str(page.relative_to(REPO)), text, match.start())}: link {target}")
    assert not missing, "paths under docs/ that do not exist:\n" + "\n".join(missing)


def test_every_cited_section_is_a_heading():
    assert DOCS.is_dir(), f"{DOCS} is missing"
    headings = {page.name: _headings(page) for page in DOCS.glob("*.md")}
    bad = []
    for label, text in documents():
        for match in CITATION.finditer(text):
            page = match.group(1)
            for number in SECTION.findall(match.group(2)):
                if number not in headings.get(page, set()):
                    bad.append(f"{_where(label, text, match.start())}: docs/{page} §{number}")
    assert not bad, (
        "cited sections that are not headings of the cited page (headings look like '## 5. Title' or "
        "'### 1.3 Title'):\n" + "\n".join(bad)
    )


def test_the_checks_see_citations():
    """Guard against a regex that silently matches nothing: the docs pages and their citations are found."""
    assert {"design.md", "room-acoustics.md", "reference-model.md"} <= {p.name for p in DOCS.glob("*.md")}
    cited = {m.group(1) for _, text in documents() for m in CITATION.finditer(text)}
    assert {"design.md", "room-acoustics.md", "reference-model.md"} <= cited
    assert _headings(DOCS / "room-acoustics.md") >= {"1.3", "2.2", "3", "4.1", "4.2", "5.4", "6", "7", "8", "9"}

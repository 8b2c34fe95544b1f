"""Fetch the real corpora from Zenodo: RAVDESS speech (audio, optionally video) and the ACE "Mobile" RIRs.

Notebook: 00_data_tour.ipynb (the corpus it tours is the one fetched here, or the synthetic stand-in)

    merlib fetch ravdess --to DIR [--video] [--actors 1-24] [--keep-archives]
    merlib fetch ace --to DIR [--keep-archives]
    merlib check-data DIR                       # then, or for a copy placed by hand (merlib.data.check)

What a run does, in order:

1. **Plan.** The archives wanted, by item: RAVDESS ``Audio_Speech_Actors_01-24.zip`` and, with ``--video``,
   ``Video_Speech_Actor_XX.zip`` for each actor of ``--actors``; ACE ``ACE_Corpus_RIRN_Mobile.tbz2``. Song
   archives and the record's other files are never touched.
2. **Already there?** ``DIR/.merlib-fetch.json`` records every archive that was downloaded, checked and
   extracted (key, md5, size, extracted folder). When every wanted item is recorded and its folder still
   exists, the run says so and stops *without any network request* (so it also works offline).
3. **Record.** Otherwise ``GET <zenodo>/api/records/<id>`` gives the file list: ``key``, ``size``,
   ``checksum`` (``"md5:<hex>"``) and ``links.self`` (the content URL) per file; extra fields are ignored,
   and Zenodo's newer ``{"entries": …}`` form of ``files`` is read too. Archives are picked by key pattern.
   The record's licence (``metadata.license``; the known one when absent) is printed before any download.
4. **Download** each archive into ``DIR/.merlib-downloads/<key>.partial``: a progress bar, resumed with an
   HTTP ``Range: bytes=N-`` request when a partial file exists (a server that answers ``200`` instead of
   ``206`` makes it start over), up to ``retries`` automatic resumes per archive after a dropped connection;
   otherwise the next run resumes. The md5 is computed while downloading and compared with the record's;
   a mismatch deletes the file and names the archive and both checksums (the other archives go on).
5. **Extract** atomically: into a temporary folder inside ``DIR``, then renamed to ``DIR/<archive stem>``
   (a top folder of the same name inside the archive is not repeated). Members with absolute paths, ``..``
   or links leaving the archive are refused. The archive is deleted afterwards unless ``keep_archives``
   (the RAVDESS video archives are the bulk of a 24.8 GB record; the state file keeps their checksums).

The resulting layouts are the ones :func:`merlib.data.ravdess.scan` and :func:`merlib.data.ace.mobile_dir`
read::

    DIR/Audio_Speech_Actors_01-24/Actor_01/03-01-01-01-01-01-01.wav
    DIR/Video_Speech_Actor_01/Actor_01/01-01-01-01-01-01-01.mp4   (and 02-01-… video-only)
    DIR/ACE_Corpus_RIRN_Mobile/Mobile/Lecture_Room_1/1/Mobile_508_1_RIR.wav

Decisions:

* ``--actors`` limits the per-actor video archives only. The speech audio is one archive for all actors
  (~200 MB); it is extracted whole, so asking for more actors later needs no second audio download.
* The Zenodo base URL is ``https://zenodo.org``, overridden by ``zenodo_url`` / ``--zenodo-url`` or the
  environment variable ``MERLIB_ZENODO_URL`` (a mirror; the tests' local server). Proxies come from the
  standard ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` variables (urllib reads them). Every connection
  times out after ``timeout`` seconds (10); a refused connection fails at once, with a message naming the
  URL and how to place the files by hand.
* Nothing is ever written into the merlib source checkout, except below its git-ignored ``data/`` folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Mapping

from tqdm.auto import tqdm

from .. import __version__
from ..errors import MerlibError

__all__ = [
    "ZENODO_URL",
    "RECORDS",
    "FetchError",
    "ChecksumError",
    "RemoteFile",
    "Record",
    "Wanted",
    "FetchResult",
    "fetch",
    "fetch_record",
    "parse_record",
    "parse_actors",
    "plan",
    "check_target",
    "download",
    "extract_archive",
    "hand_placement_help",
    "STATE_FILE",
    "DOWNLOAD_DIR",
]

ZENODO_URL = "https://zenodo.org"
#: Zenodo record ids of the two corpora.
RECORDS: dict[str, int] = {"ravdess": 1188976, "ace": 6257551}
#: Printed when a record states no licence (docs/room-acoustics.md §5.5: sources disagree on ACE's, so it is not
#: guessed).
DEFAULT_LICENCES: dict[str, str] = {
    "ravdess": "CC BY-NC-SA 4.0 (non-commercial, share-alike; never commit or redistribute it)",
    "ace": "not stated by the record's metadata; read it on the record page before use",
}
CITATIONS: dict[str, str] = {
    "ravdess": "Livingstone & Russo (2018), The Ryerson Audio-Visual Database of Emotional Speech and Song "
               "(RAVDESS), PLoS ONE 13(5): e0196391",
    "ace": "Eaton, Gaubitch, Moore & Naylor (2016), Estimation of room acoustic parameters: the ACE Challenge, "
           "IEEE/ACM TASLP 24(10): 1681-1693",
}
STATE_FILE = ".merlib-fetch.json"
DOWNLOAD_DIR = ".merlib-downloads"
TIMEOUT = 10.0
CHUNK = 1 << 20  # 1 MiB per read: few syscalls, a smooth progress bar
_USER_AGENT = f"merlib/{__version__} (dataset fetch; python-urllib)"
# HTTP answers worth another try (rate limiting, a busy or restarting server).
_TRANSIENT = (429, 500, 502, 503, 504)
# Errors of a connection that dropped or stalled mid-download: resumable.
_NETWORK_ERRORS = (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError, socket.timeout)


class FetchError(MerlibError, RuntimeError):
    """A fetch step failed; the message names the URL or file and says what to do. ``merlib fetch`` exits with
    status 1 on it (the download failed; running it again resumes), not 2 (bad input)."""


class ChecksumError(FetchError):
    """A downloaded archive does not have the md5 its record lists (the file has been deleted)."""


# ------------------------------------------------------------------------------------------ the record


@dataclass(frozen=True)
class RemoteFile:
    """One file of a Zenodo record: its ``key`` (file name), ``size`` in bytes, ``md5`` and content ``url``."""

    key: str
    size: int
    md5: str
    url: str


@dataclass(frozen=True)
class Record:
    """What the records API says about a record: id, title, licence (readable) and files."""

    id: int
    title: str
    licence: str | None
    files: tuple[RemoteFile, ...]

    def file(self, pattern: str) -> RemoteFile | None:
        """The first file whose key matches the regular expression ``pattern`` entirely."""
        rx = re.compile(pattern)
        return next((f for f in self.files if rx.fullmatch(f.key)), None)


def _licence_name(lic: Any) -> str | None:
    # legacy API: {"id": "cc-by-nc-sa-4.0"}; InvenioRDM: [{"id": …, "title": {"en": …}}]; sometimes a string
    if isinstance(lic, list):
        lic = lic[0] if lic else None
    if isinstance(lic, Mapping):
        title = lic.get("title")
        if isinstance(title, Mapping):
            title = title.get("en") or next(iter(title.values()), None)
        lic = lic.get("id") or title
    if not isinstance(lic, str) or not lic:
        return None
    m = re.fullmatch(r"cc-([a-z-]+)-(\d\.\d)", lic.lower())
    return f"CC {m.group(1).upper()} {m.group(2)}" if m else lic


def parse_record(data: Mapping[str, Any], base_url: str = ZENODO_URL) -> Record:
    """Read a records-API response (``GET /api/records/<id>``), tolerant of extra and missing fields.

    ``files`` may be a list (the legacy serialisation) or ``{"entries": list | dict}``; relative content
    links are resolved against ``base_url``. A file without key, size or md5 raises :class:`FetchError`.
    """
    files_field = data.get("files") or []
    if isinstance(files_field, Mapping):
        files_field = files_field.get("entries") or []
        if isinstance(files_field, Mapping):
            files_field = list(files_field.values())
    files = []
    for entry in files_field:
        key = entry.get("key") or entry.get("filename")
        checksum = str(entry.get("checksum") or "")
        algo, _, digest = checksum.partition(":")
        links = entry.get("links") or {}
        url = links.get("self") or links.get("content") or links.get("download")
        if not key or entry.get("size") is None or algo.lower() != "md5" or not url:
            raise FetchError(
                f"the record {data.get('id', '?')} lists a file without key, size, md5 checksum or link "
                f"({dict(entry)!r}); the records API changed? Place the files by hand (see merlib fetch --help)"
            )
        files.append(RemoteFile(key, int(entry["size"]), digest.lower(), urllib.parse.urljoin(base_url + "/", url)))
    meta = data.get("metadata") or {}
    lic = _licence_name(meta.get("license") or meta.get("rights") or data.get("license"))
    return Record(int(data.get("id", 0) or 0), str(meta.get("title") or data.get("title") or ""), lic, tuple(files))


def _base_url(zenodo_url: str | None) -> str:
    return (zenodo_url or os.environ.get("MERLIB_ZENODO_URL") or ZENODO_URL).rstrip("/")


def _open(url: str, timeout: float, headers: Mapping[str, str] | None = None):
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, **(headers or {})})
    return urllib.request.urlopen(request, timeout=timeout)  # honours HTTP(S)_PROXY / NO_PROXY


def fetch_record(dataset: str, zenodo_url: str | None = None, timeout: float = TIMEOUT,
                 to: str | os.PathLike | None = None, video: bool = True) -> Record:
    """``GET <zenodo>/api/records/<id>`` for ``"ravdess"`` or ``"ace"``, parsed by :func:`parse_record`.

    Raises :class:`FetchError` naming the URL and explaining how to place the files by hand (into ``to``)
    when the host cannot be reached, answers with an error, or sends something that is not JSON.
    """
    base = _base_url(zenodo_url)
    url = f"{base}/api/records/{RECORDS[dataset]}"
    try:
        with _open(url, timeout, {"Accept": "application/json"}) as resp:
            body = resp.read()
    except urllib.error.HTTPError as err:
        raise FetchError(f"{url} answered HTTP {err.code} {err.reason}.\n"
                         + hand_placement_help(dataset, to, video)) from err
    except _NETWORK_ERRORS as err:
        reason = getattr(err, "reason", err)
        raise FetchError(f"could not reach {url} ({reason}). Offline, or behind a proxy that needs "
                         f"HTTPS_PROXY set?\n" + hand_placement_help(dataset, to, video)) from err
    try:
        return parse_record(json.loads(body), base)
    except (ValueError, AttributeError, TypeError) as err:
        raise FetchError(f"{url} did not answer with a Zenodo record ({err}); a captive portal or proxy page?\n"
                         + hand_placement_help(dataset, to, video)) from err


# ------------------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class Wanted:
    """One archive a fetch needs: a stable ``item`` id, the key ``pattern`` and the example ``key``."""

    item: str
    pattern: str
    key: str

    @property
    def folder(self) -> str:
        """The folder it is extracted to under DIR: the archive name without its extension."""
        return _stem(self.key)


def _stem(key: str) -> str:
    for ext in (".tar.bz2", ".tar.gz", ".tbz2", ".tgz", ".zip", ".tar"):
        if key.lower().endswith(ext):
            return key[: -len(ext)]
    return key


def parse_actors(text: str | Iterable[int] | None) -> list[int]:
    """``"1-3,7"`` → ``[1, 2, 3, 7]``; ``None`` → all 24 RAVDESS actors. Raises ValueError outside 1–24."""
    if text is None:
        return list(range(1, 25))
    if not isinstance(text, str):
        actors = sorted({int(a) for a in text})
    else:
        actors_set: set[int] = set()
        for part in filter(None, (p.strip() for p in text.split(","))):
            m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
            if not m:
                raise ValueError(f"--actors {text!r}: {part!r} is not a number or a range like 1-24")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if lo > hi:
                raise ValueError(f"--actors {text!r}: range {part!r} runs backwards")
            actors_set.update(range(lo, hi + 1))
        actors = sorted(actors_set)
    bad = [a for a in actors if not 1 <= a <= 24]
    if bad or not actors:
        raise ValueError(f"--actors {text!r}: RAVDESS actors are 1-24 (got {bad or 'none'})")
    return actors


def plan(dataset: str, video: bool = False, actors: str | Iterable[int] | None = None) -> list[Wanted]:
    """The archives a fetch of ``dataset`` needs (see the module docstring)."""
    if dataset == "ravdess":
        wanted = [Wanted("ravdess/audio-speech", r"Audio_Speech_Actors_01-24\.zip", "Audio_Speech_Actors_01-24.zip")]
        if video:
            wanted += [Wanted(f"ravdess/video-speech-{a:02d}", rf"Video_Speech_Actor_0*{a}\.zip",
                              f"Video_Speech_Actor_{a:02d}.zip") for a in parse_actors(actors)]
        return wanted
    if dataset == "ace":
        if video or actors is not None:
            raise ValueError("--video and --actors apply to RAVDESS only")
        return [Wanted("ace/mobile", r"ACE_Corpus_RIRN_Mobile\.(tbz2|tar\.bz2)", "ACE_Corpus_RIRN_Mobile.tbz2")]
    raise ValueError(f"unknown dataset {dataset!r}; choose 'ravdess' or 'ace'")


def hand_placement_help(dataset: str, to: str | os.PathLike | None = None, video: bool = True) -> str:
    """How to place ``dataset`` by hand: which archives (on the Zenodo record page), where to extract them,
    and how to check the result."""
    page = f"{ZENODO_URL}/records/{RECORDS[dataset]}"
    d = str(to) if to is not None else "DIR"
    if dataset == "ravdess":
        archives = "Audio_Speech_Actors_01-24.zip" + (
            " and Video_Speech_Actor_01.zip ... Video_Speech_Actor_24.zip" if video else "")
        layout = f"  {d}/Audio_Speech_Actors_01-24/Actor_01/03-01-01-01-01-01-01.wav"
        if video:
            layout += f"\n  {d}/Video_Speech_Actor_01/Actor_01/01-01-01-01-01-01-01.mp4"
        how = f"unzip each archive into a folder named like it (`unzip X.zip -d {d}/X`)"
    else:
        archives = "ACE_Corpus_RIRN_Mobile.tbz2"
        layout = f"  {d}/ACE_Corpus_RIRN_Mobile/Mobile/Lecture_Room_1/1/Mobile_508_1_RIR.wav"
        how = f"extract it with `mkdir -p {d} && tar -xjf ACE_Corpus_RIRN_Mobile.tbz2 -C {d}`"
    return (f"To place the files by hand: download {archives} from {page} (a browser works), {how}, "
            f"giving\n{layout}\nthen run `merlib check-data {d}`.")


def repo_root() -> Path | None:
    """The merlib source checkout this package runs from (it holds ``.git``), or None when installed."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / ".git").exists() and (root / "pyproject.toml").is_file() else None


def check_target(to: str | os.PathLike) -> Path:
    """``to`` resolved; refuses a folder inside the merlib checkout unless it is under its ignored ``data/``."""
    target = Path(to).expanduser().resolve()
    root = repo_root()
    if root is not None and target.is_relative_to(root) and not target.is_relative_to(root / "data"):
        raise FetchError(
            f"refusing to fetch into {target}: it lies inside the merlib source checkout {root}, and nothing "
            f"fetched may ever be written into the repository (the corpora are licensed; never commit them). "
            f"Choose a folder outside it, or one under {root / 'data'} (git-ignored)."
        )
    return target


# ------------------------------------------------------------------------------------------ downloading


def _hash_file(path: Path, h: "hashlib._Hash") -> None:
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)


def _resync(partial: Path) -> tuple[int, "hashlib._Hash"]:
    """Size and md5 of what is on disk: the state to resume from after a failed request."""
    h = hashlib.md5()
    if not partial.exists():
        return 0, h
    _hash_file(partial, h)
    return partial.stat().st_size, h


def _retry_after(err: urllib.error.HTTPError, default: float) -> float:
    try:
        return min(60.0, float(err.headers.get("Retry-After", default)))
    except (TypeError, ValueError):
        return default


def download(remote: RemoteFile, dest: str | os.PathLike, timeout: float = TIMEOUT, retries: int = 3,
             retry_wait: float = 2.0, progress: bool = True, log: Callable[[str], None] = print) -> Path:
    """Download ``remote`` to ``dest`` through ``dest.partial``, resuming, and check its md5.

    A partial file from an earlier run is continued with ``Range: bytes=N-``; a dropped connection (or an
    HTTP 429/5xx answer) is retried up to ``retries`` times (waiting ``retry_wait`` s, doubling; a
    ``Retry-After`` header wins, up to 60 s). Returns ``dest`` once the size and
    md5 match the record. Raises :class:`FetchError`: after the retries (the partial file is kept, so the
    next run resumes), on an HTTP error, and on a checksum mismatch (the partial file is deleted).
    """
    dest = Path(dest)
    partial = dest.with_name(dest.name + ".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if partial.exists() and partial.stat().st_size > remote.size:  # not the file the record describes now
        partial.unlink()
    have, h = _resync(partial)  # the md5 continues over the bytes already on disk
    if have:
        log(f"  resuming {remote.key} at {have / 2**20:.1f} of {remote.size / 2**20:.1f} MiB")
    bar = tqdm(total=remote.size, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
               desc=remote.key, disable=not progress, leave=False)
    attempt = 0
    try:
        while have < remote.size:
            try:
                have, h = _transfer(remote, partial, have, h, timeout, bar, log)
            except urllib.error.HTTPError as err:
                if err.code not in _TRANSIENT or attempt >= retries:
                    raise FetchError(f"{remote.url} answered HTTP {err.code} {err.reason} while downloading "
                                     f"{remote.key}; run the command again later, or place the file by hand "
                                     f"(see `merlib check-data --help`)") from err
                attempt += 1
                have, h = _resync(partial)
                wait = _retry_after(err, retry_wait * 2 ** (attempt - 1))
                log(f"  {remote.url} answered HTTP {err.code}; trying again in {wait:.0f} s "
                    f"(try {attempt} of {retries})")
                time.sleep(wait)
            except _NETWORK_ERRORS as err:
                reason = getattr(err, "reason", None) or err
                have, h = _resync(partial)
                if attempt >= retries:
                    raise FetchError(
                        f"downloading {remote.key} from {remote.url} stopped at {have} of {remote.size} bytes "
                        f"({type(err).__name__}: {reason}). The partial file {partial} is kept: run the same "
                        f"command again to resume from there."
                    ) from err
                attempt += 1
                log(f"  connection lost at {have} of {remote.size} bytes ({reason}); resuming "
                    f"(try {attempt} of {retries})")
                time.sleep(retry_wait * 2 ** (attempt - 1))
    finally:
        bar.close()
    got = h.hexdigest()
    if got != remote.md5:
        partial.unlink()
        raise ChecksumError(
            f"checksum mismatch for {remote.key}: the record lists md5 {remote.md5}, the downloaded file has "
            f"md5 {got}. Deleted {partial}; nothing was extracted. Run the command again to download it afresh "
            f"(if it fails again, something between you and {remote.url} alters the file)."
        )
    os.replace(partial, dest)
    return dest


def _transfer(remote: RemoteFile, partial: Path, have: int, h: "hashlib._Hash", timeout: float, bar: Any,
              log: Callable[[str], None]) -> tuple[int, "hashlib._Hash"]:
    """One HTTP request: append what the server sends to ``partial``; return the new size and md5 state."""
    headers = {"Range": f"bytes={have}-"} if have else {}
    with _open(remote.url, timeout, headers) as resp:
        status = getattr(resp, "status", 200)
        if have and status == 200:
            log(f"  the server ignored the range request for {remote.key}; starting it over")
            have, h = 0, hashlib.md5()
            bar.reset(total=remote.size)
        elif status == 206:
            start = re.match(r"bytes\s+(\d+)-", resp.headers.get("Content-Range", ""))
            if not start or int(start.group(1)) != have:
                raise FetchError(f"{remote.url} answered a range request for byte {have} with "
                                 f"{resp.headers.get('Content-Range')!r}; delete {partial} and run again")
        with open(partial, "ab" if have else "wb") as f:
            while block := resp.read(CHUNK):
                f.write(block)
                h.update(block)
                have += len(block)
                bar.update(len(block))
                if have > remote.size:
                    break
    if have > remote.size:
        partial.unlink()
        raise FetchError(f"{remote.url} sent more than the {remote.size} bytes the record lists for "
                         f"{remote.key}; deleted the partial file. The record may have changed: run again.")
    if have < remote.size:  # the server closed the connection early without an exception
        raise ConnectionError(f"connection closed after {have} bytes")
    return have, h


# ------------------------------------------------------------------------------------------ extracting


def _unsafe(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0])


def extract_archive(archive: str | os.PathLike, root: str | os.PathLike, folder: str) -> Path:
    """Extract a zip or tar(.bz2/.gz) ``archive`` to ``root/folder`` atomically and return that folder.

    Everything is extracted into a temporary folder inside ``root`` first and renamed into place at the
    end, so ``root/folder`` either does not exist or is complete. When the archive's content is a single
    folder named ``folder`` it is not nested twice. Refuses members with absolute paths or ``..`` (and, for
    tar, links leaving the archive or devices), and an existing ``root/folder``.
    """
    archive, root = Path(archive), Path(root)
    target = root / folder
    if target.exists():
        raise FetchError(f"{target} already exists; move it away (or delete it) before extracting {archive.name}")
    tmp = Path(tempfile.mkdtemp(prefix=f".extract-{folder}-", dir=root))
    try:
        inner = tmp / "x"
        inner.mkdir()
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                names = [n for n in zf.namelist() if not n.startswith("__MACOSX/")]
                bad = [n for n in names if _unsafe(n)]
                if bad:
                    raise FetchError(f"{archive.name} holds unsafe member path(s) {bad[:3]}; refusing to extract it")
                zf.extractall(inner, members=names)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as tf:
                members = tf.getmembers()
                bad = [m.name for m in members if _unsafe(m.name)]
                if bad:
                    raise FetchError(f"{archive.name} holds unsafe member path(s) {bad[:3]}; refusing to extract it")
                try:
                    tf.extractall(inner, filter="data")  # also refuses links out of the tree and devices
                except tarfile.FilterError as err:
                    raise FetchError(f"{archive.name}: refusing to extract an unsafe member ({err})") from err
        else:
            raise FetchError(f"{archive} is neither a zip nor a tar archive; delete it and fetch again")
        entries = list(inner.iterdir())
        src = entries[0] if len(entries) == 1 and entries[0].is_dir() and entries[0].name == folder else inner
        os.replace(src, target)  # one rename: the folder appears complete or not at all
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise FetchError(f"could not extract {archive} ({err}); delete it and fetch again") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ------------------------------------------------------------------------------------------ the run


@dataclass
class FetchResult:
    """What :func:`fetch` did: the target folder, items fetched now, items already there, and the record."""

    root: Path
    fetched: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    record: Record | None = None

    @property
    def nothing_to_do(self) -> bool:
        return not self.fetched


def _read_state(root: Path) -> dict[str, Any]:
    path = root / STATE_FILE
    if not path.exists():
        return {"items": {}}
    try:
        state = json.loads(path.read_text())
    except ValueError as err:
        raise FetchError(f"{path} is not valid JSON ({err}); delete it and run again (finished archives "
                         f"are then checked afresh)") from err
    state.setdefault("items", {})
    return state


def _done(root: Path, state: Mapping[str, Any], want: Wanted) -> bool:
    paths = (state["items"].get(want.item) or {}).get("extracted") or []
    return bool(paths) and all((root / p).exists() for p in paths)


def fetch(dataset: str, to: str | os.PathLike, video: bool = False, actors: str | Iterable[int] | None = None,
          zenodo_url: str | None = None, keep_archives: bool = False, timeout: float = TIMEOUT, retries: int = 3,
          retry_wait: float = 2.0, progress: bool = True, log: Callable[[str], None] = print) -> FetchResult:
    """Fetch ``dataset`` (``"ravdess"`` or ``"ace"``) into ``to``; see the module docstring for every step.

    Args:
        dataset: ``"ravdess"`` (speech audio; with ``video`` the per-actor audio-video archives) or ``"ace"``
            (the Mobile RIRs).
        to: the target folder (created; never inside the merlib checkout except under ``data/``).
        video, actors: RAVDESS only: fetch the video archives of ``actors`` (``"1-3,7"``; default all 24).
        zenodo_url: base URL instead of ``$MERLIB_ZENODO_URL`` or https://zenodo.org.
        keep_archives: keep the verified archives in ``to/.merlib-downloads`` after extraction.
        timeout: seconds before a connection attempt or a stalled read fails.
        retries: automatic resumes per archive after a dropped connection.
        retry_wait: seconds before the first resume (doubling).
        progress: show tqdm progress bars.
        log: where messages go (``print``).

    Returns a :class:`FetchResult`. Raises :class:`FetchError` (offline, HTTP errors, checksum mismatches —
    after the other archives were fetched —, unsafe archives, an existing folder in the way) and
    ``ValueError`` for bad arguments.
    """
    from .media import write_json  # imported here: soundfile/PyAV/scipy are not needed to fail fast offline

    wanted = plan(dataset, video, actors)
    root = check_target(to)
    state = _read_state(root)
    result = FetchResult(root)
    todo = [w for w in wanted if not _done(root, state, w)]
    result.already = [w.item for w in wanted if w not in todo]
    if not todo:
        log(f"{dataset}: all {len(wanted)} archive(s) already fetched, verified and extracted in {root} "
            f"(recorded in {STATE_FILE}); nothing to do. Check the files with `merlib check-data {root}`.")
        return result
    for w in todo:  # before any download: a folder in the way would waste it
        if (root / w.folder).exists():
            raise FetchError(
                f"{root / w.folder} already exists but {STATE_FILE} does not record it as fetched (placed by "
                f"hand, or an older fetch?). Check it with `merlib check-data {root}`, or move it away to fetch "
                f"it again."
            )

    record = fetch_record(dataset, zenodo_url, timeout, to=root, video=video)
    result.record = record
    remotes: list[tuple[Wanted, RemoteFile]] = []
    for w in todo:
        remote = record.file(w.pattern)
        if remote is None:
            listed = ", ".join(f.key for f in record.files[:8]) + (" …" if len(record.files) > 8 else "")
            raise FetchError(f"{_base_url(zenodo_url)}/api/records/{RECORDS[dataset]} lists no file {w.key} "
                             f"(its files: {listed}).\n" + hand_placement_help(dataset, root, video))
        remotes.append((w, remote))

    total = sum(r.size for _, r in remotes)
    biggest = max(r.size for _, r in remotes)
    free = shutil.disk_usage(next(p for p in (root, *root.parents) if p.exists())).free
    need = 2 * total if keep_archives else total + biggest  # archives + their contents, one archive at a time
    if free < need:
        raise FetchError(f"{root} has {free / 2**30:.1f} GiB free; fetching {len(remotes)} archive(s) "
                         f"({total / 2**30:.1f} GiB) needs about {need / 2**30:.1f} GiB. Free space or choose "
                         f"another --to.")

    log(f"{record.title or dataset} — Zenodo record {RECORDS[dataset]}")
    log(f"Licence: {record.licence or DEFAULT_LICENCES[dataset]}. Cite: {CITATIONS[dataset]}.")
    log(f"Fetching {len(remotes)} archive(s), {total / 2**20:.1f} MiB, into {root}"
        + (f" ({len(result.already)} already there)" if result.already else ""))

    root.mkdir(parents=True, exist_ok=True)  # only now: a run that fails offline leaves nothing behind
    downloads = root / DOWNLOAD_DIR
    failures: list[str] = []
    for w, remote in remotes:
        archive = downloads / remote.key
        try:
            if archive.exists() and _md5_of(archive) == remote.md5:
                log(f"  {remote.key}: verified archive from an earlier run")
            else:
                if archive.exists():
                    archive.unlink()
                log(f"  downloading {remote.key} ({remote.size / 2**20:.1f} MiB)")
                download(remote, archive, timeout, retries, retry_wait, progress, log)
        except ChecksumError as err:  # the other archives go on; reported together at the end
            log(f"  {err}")
            failures.append(str(err))
            continue
        log(f"  {remote.key}: md5 verified; extracting")
        extract_archive(archive, root, w.folder)
        state["items"][w.item] = {"record": RECORDS[dataset], "key": remote.key, "md5": remote.md5,
                                  "size": remote.size, "extracted": [w.folder],
                                  "archive": str(archive.relative_to(root)) if keep_archives else None,
                                  "fetched": time.strftime("%Y-%m-%d %H:%M:%S")}
        state["merlib_version"] = __version__
        write_json(root / STATE_FILE, state)  # after each archive: an interrupted run keeps its progress
        if not keep_archives:
            archive.unlink()
        result.fetched.append(w.item)
        log(f"  {remote.key}: extracted to {root / w.folder}")
    if downloads.exists() and not any(downloads.iterdir()):
        downloads.rmdir()
    if failures:
        raise ChecksumError(f"{len(failures)} archive(s) failed their checksum and were deleted:\n  "
                            + "\n  ".join(failures))
    log(f"{dataset}: done ({len(result.fetched)} fetched). Check the files with `merlib check-data {root}`.")
    return result


def _md5_of(path: Path) -> str:
    h = hashlib.md5()
    _hash_file(path, h)
    return h.hexdigest()

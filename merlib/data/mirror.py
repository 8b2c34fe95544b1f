"""A small Zenodo-compatible file server on 127.0.0.1: for the fetch tests, the fetch benchmark, or a lab mirror.

Notebook: none (infrastructure of :mod:`merlib.data.fetch`)

It answers the two requests :func:`merlib.data.fetch.fetch` makes, in Zenodo's schema:

* ``GET /api/records/<id>`` — ``{"id", "metadata": {"title", "license"}, "files": [{"key", "size",
  "checksum": "md5:<hex>", "links": {"self": <content URL>}}, …]}`` plus a few extra fields, as the real API
  has more than the client reads;
* ``GET /api/records/<id>/files/<key>/content`` — the bytes, honouring ``Range: bytes=N-`` (``206`` with
  ``Content-Range``).

and counts every request (path and ``Range`` header) in :attr:`ZenodoMirror.requests`. Four switches make
the failures the fetch must survive: :meth:`cut_after` (close the connection after N bytes, once),
:meth:`fail_next` (one HTTP error answer), :meth:`corrupt` (serve altered bytes under the record's md5) and
``ignore_range`` (answer ``200`` to a range request). Point merlib at it with
``MERLIB_ZENODO_URL=<mirror.url>`` or ``fetch(…, zenodo_url=mirror.url)``::

    with ZenodoMirror({1188976: {"Audio_Speech_Actors_01-24.zip": path}}) as mirror:
        fetch("ravdess", "/data/RAVDESS", zenodo_url=mirror.url)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote, unquote

__all__ = ["ZenodoMirror", "Request"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Request:
    """One request the mirror received: the path and the ``Range`` header (None when absent)."""

    path: str
    range: str | None

    @property
    def is_content(self) -> bool:
        return self.path.endswith("/content")


class ZenodoMirror:
    """Serve ``records`` ``{record_id: {key: bytes | path}}`` on 127.0.0.1 (a free port) in a thread.

    Args:
        records: the files of each record; a value is the content (``bytes``) or a file to stream.
        licences: ``{record_id: licence id}`` for ``metadata.license`` (e.g. ``"cc-by-nc-sa-4.0"``).
        ignore_range: answer range requests with the whole file (``200``), like servers without range support.

    Use as a context manager (or :meth:`start` / :meth:`stop`); :attr:`url` is the base URL.
    """

    def __init__(self, records: Mapping[int, Mapping[str, bytes | os.PathLike | str]],
                 licences: Mapping[int, str] | None = None, ignore_range: bool = False) -> None:
        self.records = {int(r): dict(files) for r, files in records.items()}
        self.licences = dict(licences or {})
        self.ignore_range = ignore_range
        self.requests: list[Request] = []
        self._cut: dict[str, int] = {}
        self._fail: dict[str, int] = {}
        self._corrupt: set[str] = set()
        self._md5: dict[tuple[int, str], str] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- switches -----------------------------------------------------------------------------------

    def cut_after(self, key: str, nbytes: int) -> None:
        """The next content request for ``key`` sends ``nbytes`` bytes, then closes the connection."""
        self._cut[key] = int(nbytes)

    def fail_next(self, key: str, status: int = 503) -> None:
        """The next content request for ``key`` is answered with HTTP ``status`` (e.g. 503, 429, 404)."""
        self._fail[key] = int(status)

    def corrupt(self, key: str, on: bool = True) -> None:
        """Serve ``key`` with one byte altered (the record keeps the true md5)."""
        (self._corrupt.add if on else self._corrupt.discard)(key)

    def content_requests(self, key: str | None = None) -> list[Request]:
        """The content requests so far (for one ``key`` when given)."""
        return [r for r in self.requests if r.is_content and (key is None or unquote(r.path).split("/")[-2] == key)]

    # -- life cycle -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("ZenodoMirror is not running; use it as a context manager or call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "ZenodoMirror":
        mirror = self

        class Handler(_Handler):
            owner = mirror

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="zenodo-mirror",
                                        daemon=True)  # polls every 50 ms so stop() returns at once
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "ZenodoMirror":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- content --------------------------------------------------------------------------------------

    def _size(self, value: bytes | os.PathLike | str) -> int:
        return len(value) if isinstance(value, bytes) else Path(value).stat().st_size

    def md5(self, record: int, key: str) -> str:
        """The md5 the record lists for ``key`` (of the true content; computed once)."""
        with self._lock:
            if (record, key) not in self._md5:
                value = self.records[record][key]
                h = hashlib.md5()
                if isinstance(value, bytes):
                    h.update(value)
                else:
                    with open(value, "rb") as f:
                        while block := f.read(_CHUNK):
                            h.update(block)
                self._md5[(record, key)] = h.hexdigest()
            return self._md5[(record, key)]

    def record_json(self, record: int) -> dict[str, Any]:
        base = self.url
        files = [
            {"id": f"{record}-{i}", "key": key, "size": self._size(value),
             "checksum": f"md5:{self.md5(record, key)}", "mimetype": "application/octet-stream",
             "links": {"self": f"{base}/api/records/{record}/files/{quote(key)}/content"}}
            for i, (key, value) in enumerate(sorted(self.records[record].items()))
        ]
        licence = self.licences.get(record)
        return {
            "id": record, "recid": str(record), "created": "2018-04-05T00:00:00+00:00",
            "doi": f"10.5281/zenodo.{record}",
            "metadata": {"title": f"record {record} (local mirror)", "resource_type": {"type": "dataset"},
                         **({"license": {"id": licence}} if licence else {})},
            "files": files, "links": {"self": f"{base}/api/records/{record}"}, "stats": {"downloads": 0},
        }


class _Handler(BaseHTTPRequestHandler):
    owner: ZenodoMirror
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test and benchmark output clean
        pass

    def do_GET(self) -> None:
        mirror = self.owner
        mirror.requests.append(Request(self.path, self.headers.get("Range")))
        m = re.fullmatch(r"/api/records/(\d+)(?:/files/([^/]+)/content)?", self.path.split("?")[0])
        record = int(m.group(1)) if m else None
        if m is None or record not in mirror.records:
            return self._send_error(404, "not found")
        if m.group(2) is None:
            body = json.dumps(mirror.record_json(record)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        key = unquote(m.group(2))
        if key not in mirror.records[record]:
            return self._send_error(404, f"no file {key}")
        if key in mirror._fail:
            return self._send_error(mirror._fail.pop(key), "failing on purpose")
        self._send_content(record, key)

    def _send_error(self, code: int, text: str) -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_content(self, record: int, key: str) -> None:
        mirror = self.owner
        value = mirror.records[record][key]
        size = mirror._size(value)
        start = 0
        rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "") or "")
        if rng and not mirror.ignore_range:
            start = int(rng.group(1))
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        limit = mirror._cut.pop(key, None)
        sent = 0
        pos = start
        source = None if isinstance(value, bytes) else open(value, "rb")
        try:
            if source is not None:
                source.seek(start)
            while pos < size:
                n = min(_CHUNK, size - pos) if limit is None else min(_CHUNK, size - pos, limit - sent)
                if n <= 0:
                    break
                block = value[pos:pos + n] if isinstance(value, bytes) else source.read(n)
                if key in mirror._corrupt and pos <= size // 2 < pos + n:
                    i = size // 2 - pos
                    block = block[:i] + bytes([block[i] ^ 0xFF]) + block[i + 1:]
                self.wfile.write(block)
                pos += n
                sent += n
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            if source is not None:
                source.close()
        if limit is not None:
            self.wfile.flush()
            self.close_connection = True  # the client sees the connection end early

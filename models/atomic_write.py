"""Putting a model file in place atomically: a temp file beside it, its sha256, a check, a rename.

Assembled, unpacked and downloaded files are all written next to their destination, hashed,
checked against what the catalog (or an archive's manifest, or the hub) states, and only then
renamed over the destination, so a failed or interrupted write never leaves a file that looks
complete. The check is the caller's: it raises its own error, with its own wording, to reject.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from models.store import sha256_file

PARTIAL_SUFFIX = ".partial"
# mkstemp makes 0600 files; weights must stay readable by a service running as another user.
FILE_MODE = 0o644


@dataclass(frozen=True)
class Written:
    """A finished temp file, before the rename: where it is, its size and its sha256."""

    path: Path
    size: int
    sha256: str


# Raises to reject the file; the temp file is then deleted and the destination left as it was.
Check = Callable[[Written], None]


class HashingSink:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        """Write ``data`` to the file and the hash; returns its length."""
        self._digest.update(data)
        self._inner.write(data)
        self.size += len(data)
        return len(data)

    def hexdigest(self) -> str:
        """The sha256 of everything written so far."""
        return self._digest.hexdigest()


@contextmanager
def atomic_write(
    dest: Path, *, check: Check | None = None, suffix: str = PARTIAL_SUFFIX
) -> Iterator[HashingSink]:
    """Yield a temp file beside ``dest``; on a clean exit, check it and rename it to ``dest``.

    The bytes are hashed as they are written, so the check re-reads nothing. A rejection (or
    any exception in the block) deletes the temp file.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=suffix)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as raw:
            sink = HashingSink(raw)
            yield sink
            raw.flush()
            os.fsync(raw.fileno())
        if check is not None:
            check(Written(tmp, sink.size, sink.hexdigest()))
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def install_file(
    tmp: Path, dest: Path, *, check: Check, progress: bool = True, label: str | None = None
) -> Written:
    """Hash a temp file something else finished writing (a download), check it, rename it.

    A rejected file is deleted; one interrupted while being hashed stays, so a resumable
    download is not lost.
    """
    written = Written(tmp, tmp.stat().st_size, sha256_file(tmp, progress=progress, label=label))
    try:
        check(written)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, dest)
    return written

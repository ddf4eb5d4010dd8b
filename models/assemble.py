"""Writing one model file from its parts: concatenation, or packing Kokoro voices into an .npz.

Every writer goes through :func:`models.atomic_write.atomic_write`: a temporary file in the
destination directory, checked against the catalog's size and sha256, and only then renamed into
place, so a failed or interrupted pull never leaves a file that looks complete.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
from numpy.lib import format as npy_format
from tqdm import tqdm

from models.atomic_write import PARTIAL_SUFFIX, Written, atomic_write

CHUNK = 1 << 20
# Each kokoro-js voice .bin is raw float32: 510 style vectors (one per token count) x 1 x 256.
VOICE_SHAPE = (510, 1, 256)
VOICE_BYTES = 510 * 256 * 4
# zip's earliest representable time: a constant date makes the archive byte-for-byte stable.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class AssemblyError(RuntimeError):
    """An assembled file does not match the catalog; nothing was left in its place."""


class Sink(Protocol):
    """Anything bytes can be written to."""

    def write(self, data: bytes, /) -> int:
        """Write ``data`` and return how many bytes were written."""
        ...


@contextmanager
def atomic_output(dest: Path, *, size: int, sha256: str, label: str) -> Iterator[Sink]:
    """Yield a writable temp file next to ``dest``; on success, check it and rename it to ``dest``.

    A mismatch (or any exception) deletes the temp file and leaves ``dest`` as it was.
    """

    def check(written: Written) -> None:
        if written.size != size or written.sha256 != sha256:
            raise AssemblyError(
                f"{label}: assembled {written.size:,} B with sha256 {written.sha256}, "
                f"the catalog expects {size:,} B with sha256 {sha256}"
            )

    with atomic_write(dest, check=check) as sink:
        yield sink


def concat_streams(
    sources: Sequence[tuple[int, BinaryIO]],
    out: Sink,
    *,
    progress: bool = True,
    label: str = "",
) -> None:
    """Copy ``(size, stream)`` sources back to back into ``out``, one progress bar for all."""
    with tqdm(
        total=sum(size for size, _ in sources),
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"assemble {label}",
        disable=not progress,
        leave=False,
        delay=1.0,
    ) as bar:
        for _, fh in sources:
            while chunk := fh.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))


def voice_array(name: str, raw: bytes) -> np.ndarray:
    """One kokoro-js voice .bin as a float32 (510, 1, 256) array; ValueError on a wrong size."""
    if len(raw) != VOICE_BYTES:
        raise ValueError(f"voice {name}: {len(raw):,} B, expected {VOICE_BYTES:,} B")
    return np.frombuffer(raw, dtype="<f4").reshape(VOICE_SHAPE)


def write_voices_npz(
    voices: Sequence[tuple[str, Callable[[], bytes]]],
    out: Sink,
    *,
    progress: bool = True,
    label: str = "",
) -> None:
    """Write an .npz that ``numpy.load`` reads as {voice name: float32 (510, 1, 256)}.

    Unlike ``np.savez`` the output is deterministic (fixed timestamps, stored entries, sorted
    keys), so its sha256 can live in the catalog. The archive is built in memory (~28 MB) so
    zipfile can seek back to its local headers instead of writing data descriptors.
    """
    archive = io.BytesIO()
    with (
        zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf,
        tqdm(
            total=len(voices),
            unit="voice",
            desc=f"assemble {label}",
            disable=not progress,
            leave=False,
            delay=1.0,
        ) as bar,
    ):
        for name, read in sorted(voices, key=lambda item: item[0]):
            buf = io.BytesIO()
            npy_format.write_array(
                buf, voice_array(name, read()), version=(1, 0), allow_pickle=False
            )
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
            bar.update(1)
    out.write(archive.getvalue())


def remove_partials(directory: Path) -> list[Path]:
    """Delete temp files an interrupted pull left in ``directory``; returns what was removed."""
    if not directory.is_dir():
        return []
    removed = [p for p in directory.glob(f".*{PARTIAL_SUFFIX}") if p.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed

"""One archive of a profile's model files, for machines that never reach a hub (air-gapped homes).

`pack` writes a plain tar: ``MANIFEST.json`` first (format, profile, every model id, file, size
and sha256), then ``models/<model-id>/<file>`` for each file. Weights do not compress, so the
tar is not compressed, and it streams: `unpack` reads it once, front to back, from a file or a
pipe. Every file is hashed as it is written out of the archive, compared with the manifest and
with the catalog, and only then renamed into place; a damaged or truncated archive is rejected
with the name of the file it damaged, and nothing wrong is left in the store.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from tqdm import tqdm

from models.atomic_write import Written, atomic_write
from models.store import ModelStore, Problem

MANIFEST = "MANIFEST.json"
FORMAT = "jetvoice-models/1"
CHUNK = 1 << 20
Echo = Callable[[str], None]


class ArchiveError(RuntimeError):
    """An archive cannot be packed or unpacked; the message names the model and file."""


@dataclass(frozen=True)
class ArchivedFile:
    """One manifest entry."""

    model_id: str
    name: str
    size: int
    sha256: str

    @property
    def member(self) -> str:
        """Its path inside the tar."""
        return f"models/{self.model_id}/{self.name}"


def pack(
    model_ids: Sequence[str],
    store: ModelStore,
    output: Path,
    *,
    profile: str | None = None,
    progress: bool = True,
    echo: Echo | None = None,
) -> list[ArchivedFile]:
    """Write the given models' files into one tar at ``output``; returns the manifest entries.

    Refuses models that are not pinned or not verified in ``store`` (so an archive never carries
    a file the catalog cannot check), and re-hashes every byte as it is packed.
    """
    say = echo or (lambda _s: None)
    ids = list(dict.fromkeys(model_ids))
    problems: list[Problem] = []
    for model_id in ids:
        problems += store.verify(model_id, progress=progress)
    if problems:
        raise ArchiveError(
            "cannot pack: " + "; ".join(str(p) for p in problems) + " (fix with `jetvoice models "
            "pull` on a connected machine, then `jetvoice models lock` for hub files)"
        )
    entries = [
        ArchivedFile(model_id, spec.name, spec.size, spec.sha256)
        for model_id in ids
        for spec in store.model(model_id).files
    ]
    manifest = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "profile": profile,
        "models": ids,
        "files": [
            {"model": e.model_id, "name": e.name, "size": e.size, "sha256": e.sha256}
            for e in entries
        ],
    }
    total = sum(e.size for e in entries)
    # The archive itself is checked member by member below; its own digest pins nothing. A
    # streaming tar only writes to its file (typeshed asks for a seekable, readable one).
    with (
        atomic_write(output, suffix=".tmp") as out,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,  # type: ignore[call-overload]
        _bar(total, "pack", progress) as bar,
    ):
        data = json.dumps(manifest, indent=1).encode()
        tar.addfile(_info(MANIFEST, len(data)), io.BytesIO(data))
        for entry in entries:
            path = store.file(entry.model_id, entry.name)
            with path.open("rb") as fh:
                hashing = _HashingReader(fh, bar.update)
                tar.addfile(_info(entry.member, entry.size), hashing)
            if hashing.hexdigest() != entry.sha256:
                raise ArchiveError(
                    f"{entry.model_id}/{entry.name} changed while it was packed "
                    f"(sha256 {hashing.hexdigest()}, expected {entry.sha256})"
                )
    say(f"packed {len(ids)} models, {len(entries)} files, {total / 2**20:,.1f} MiB into {output}")
    return entries


def unpack(
    archive: Path | BinaryIO,
    store: ModelStore,
    *,
    progress: bool = True,
    echo: Echo | None = None,
) -> list[ArchivedFile]:
    """Verify and install every file of ``archive`` into ``store``; returns what was installed.

    Each file must match the manifest's size and sha256 and, where the catalog pins the file, the
    catalog too. ArchiveError names the first file that does not; files already installed from
    the same archive stay (they were verified), the bad one is never written in place.
    """
    say = echo or (lambda _s: None)
    opened = archive.open("rb") if isinstance(archive, Path) else None
    stream: BinaryIO = opened if opened is not None else archive  # type: ignore[assignment]
    installed: list[ArchivedFile] = []
    expected: dict[str, ArchivedFile] = {}
    current = MANIFEST
    bar = _bar(0, "unpack", False)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                current = info.name
                if not expected:
                    expected = _read_manifest(tar, info, store)
                    bar.close()
                    bar = _bar(sum(e.size for e in expected.values()), "unpack", progress)
                    continue
                entry = expected.pop(info.name, None)
                if entry is None or not info.isfile():
                    raise ArchiveError(f"unexpected member {info.name!r} (not in the manifest)")
                if info.size != entry.size:
                    raise ArchiveError(
                        f"{entry.model_id}/{entry.name}: {info.size:,} B in the archive, the "
                        f"manifest says {entry.size:,} B"
                    )
                source = tar.extractfile(info)
                assert source is not None  # a regular file always has a stream
                _install(entry, source, store, bar.update)
                installed.append(entry)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"damaged or truncated archive at {current}: {exc}") from exc
    finally:
        bar.close()
        if opened is not None:
            opened.close()
    if not installed and not expected:
        raise ArchiveError("empty archive: no manifest")
    if expected:
        missing = ", ".join(f"{e.model_id}/{e.name}" for e in expected.values())
        raise ArchiveError(f"truncated archive: missing {missing}")
    say(f"unpacked and verified {len(installed)} files into {store.root}")
    return installed


def read_manifest(archive: Path) -> dict[str, object]:
    """The manifest of ``archive`` (reads only its first member)."""
    with archive.open("rb") as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
        info = tar.next()
        if info is None or info.name != MANIFEST:
            raise ArchiveError(f"{archive}: first member is not {MANIFEST}")
        member = tar.extractfile(info)
        assert member is not None
        data: dict[str, object] = json.loads(member.read())
        return data


# --- internals ----------------------------------------------------------------------------------


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0  # identical inputs give an identical archive
    info.uname = info.gname = ""
    return info


def _bar(total: int, what: str, progress: bool) -> tqdm:
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=what,
        disable=not progress,
        leave=False,
        delay=1.0,
    )


class _HashingReader:
    """A read-only stream that hashes what is read from it."""

    def __init__(self, inner: BinaryIO, seen: Callable[[int], object]) -> None:
        self._inner = inner
        self._digest = hashlib.sha256()
        self._seen = seen

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._digest.update(data)
        self._seen(len(data))
        return data

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _read_manifest(
    tar: tarfile.TarFile, info: tarfile.TarInfo, store: ModelStore
) -> dict[str, ArchivedFile]:
    if info.name != MANIFEST or not info.isfile() or info.size > 16 << 20:
        raise ArchiveError(f"not a jetvoice models archive: first member is {info.name!r}")
    member = tar.extractfile(info)
    assert member is not None
    try:
        data = json.loads(member.read())
    except ValueError as exc:
        raise ArchiveError(f"damaged manifest: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArchiveError(f"not a {FORMAT} archive")
    out: dict[str, ArchivedFile] = {}
    for item in data.get("files", []):
        entry = ArchivedFile(
            str(item["model"]), str(item["name"]), int(item["size"]), str(item["sha256"])
        )
        model = store.catalog.model(entry.model_id)  # ValueError for a model this code lacks
        if "/" in entry.name or entry.name.startswith(".") or "/" in entry.model_id:
            raise ArchiveError(f"unsafe path in the manifest: {entry.member!r}")
        pinned = {f.name: f for f in model.files}.get(entry.name)
        if pinned is not None and (pinned.sha256, pinned.size) != (entry.sha256, entry.size):
            raise ArchiveError(
                f"{entry.model_id}/{entry.name}: the archive's manifest says sha256 "
                f"{entry.sha256}, this catalog pins {pinned.sha256} (archive made with another "
                "catalog version)"
            )
        out[entry.member] = entry
    if not out:
        raise ArchiveError("the manifest lists no files")
    return out


def _install(
    entry: ArchivedFile, source: IO[bytes], store: ModelStore, seen: Callable[[int], object]
) -> None:
    def check(written: Written) -> None:
        if written.sha256 != entry.sha256:
            raise ArchiveError(
                f"{entry.model_id}/{entry.name} is corrupted in the archive: sha256 "
                f"{written.sha256}, the manifest says {entry.sha256}"
            )

    with atomic_write(store.path(entry.model_id) / entry.name, check=check) as out:
        while chunk := source.read(CHUNK):
            out.write(chunk)
            seen(len(chunk))
    spec = {f.name: f for f in store.model(entry.model_id).files}.get(entry.name)
    if spec is not None:
        store.record_verified(entry.model_id, spec)

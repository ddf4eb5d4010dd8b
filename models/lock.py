"""The hub lock: exact commits, sizes and sha256 of hub files, recorded by a pull, pinned by `lock`.

Where no trustworthy source gave a hub file's sha256 (or a model's file list), the catalog leaves
it pending. `jetvoice models pull` downloads such files, checks them against the hub's own LFS
sha256 where the hub gives one, and records what it got in ``<models-dir>/.hub-resolved.json``.
`jetvoice models lock` copies those records into ``models/hub.lock.json`` (committed with the
code); the catalog reads that file when it is built, and from then on the files are pinned like
any other. The lock never overrides a sha256 the catalog already has: a disagreement is an error.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from models.spec import HubPart, Model, ModelFile

LOCK_PATH = Path(__file__).resolve().parent / "hub.lock.json"
RESOLVED_FILE = ".hub-resolved.json"
LOCK_VERSION = 1
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class LockError(ValueError):
    """The lock file is malformed or contradicts the catalog."""


@dataclass(frozen=True)
class LockedFile:
    """One hub file as a pull found it."""

    name: str
    size: int
    sha256: str
    source: str


@dataclass(frozen=True)
class LockedModel:
    """A hub model's resolved commit and files."""

    model_id: str
    hub: str
    repo: str
    revision: str
    files: tuple[LockedFile, ...]

    def as_json(self) -> dict[str, object]:
        """The JSON form stored in the lock."""
        return {
            "hub": self.hub,
            "repo": self.repo,
            "revision": self.revision,
            "files": [
                {"name": f.name, "size": f.size, "sha256": f.sha256, "source": f.source}
                for f in sorted(self.files, key=lambda f: f.name)
            ],
        }


def parse_lock(data: object, *, origin: str) -> dict[str, LockedModel]:
    """Validate a lock document; LockError naming ``origin`` and the bad entry otherwise."""
    if not isinstance(data, dict) or data.get("version") != LOCK_VERSION:
        raise LockError(f"{origin}: not a version {LOCK_VERSION} hub lock")
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise LockError(f"{origin}: 'models' must be an object")
    out: dict[str, LockedModel] = {}
    for model_id, entry in models.items():
        where = f"{origin}: {model_id}"
        if not isinstance(entry, dict):
            raise LockError(f"{where}: must be an object")
        hub, repo, revision = entry.get("hub"), entry.get("repo"), entry.get("revision")
        if hub not in ("hf", "github-release") or not isinstance(repo, str):
            raise LockError(f"{where}: bad hub or repo")
        if not isinstance(revision, str) or (hub == "hf" and not _COMMIT.fullmatch(revision)):
            raise LockError(f"{where}: revision must be a full 40-hex commit for hf")
        files = []
        for item in entry.get("files", []):
            if not isinstance(item, dict):
                raise LockError(f"{where}: bad file entry")
            name, size, sha = item.get("name"), item.get("size"), item.get("sha256")
            if not isinstance(name, str) or "/" in name or name.startswith("."):
                raise LockError(f"{where}: bad file name {name!r}")
            if not isinstance(size, int) or size <= 0:
                raise LockError(f"{where}/{name}: bad size")
            if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
                raise LockError(f"{where}/{name}: bad sha256")
            files.append(LockedFile(name, size, sha, str(item.get("source", ""))))
        if not files:
            raise LockError(f"{where}: no files")
        out[model_id] = LockedModel(model_id, hub, repo, revision, tuple(files))
    return out


def read_lock(path: Path) -> dict[str, LockedModel]:
    """The lock at ``path``; empty when the file does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LockError(f"{path}: not JSON: {exc}") from None
    return parse_lock(data, origin=str(path))


def write_lock(path: Path, models: Mapping[str, LockedModel]) -> None:
    """Write ``models`` as a lock document, atomically, keys sorted (stable diffs)."""
    doc = {
        "version": LOCK_VERSION,
        "models": {k: models[k].as_json() for k in sorted(models)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _same_revision(declared: str, resolved: str) -> bool:
    # A catalog may name a branch ("main") or a short commit; the lock always has the full one.
    # A branch matches whatever commit the pull resolved it to: pinning that commit is the point.
    if re.fullmatch(r"[0-9a-f]{7,40}", declared):
        return resolved.startswith(declared)
    return declared == resolved or bool(_COMMIT.fullmatch(resolved))


def apply_lock(model: Model, locked: LockedModel | None) -> Model:
    """``model`` with its pending files (or unresolved listing) pinned from ``locked``."""
    if locked is None or model.pinned:
        return model
    if model.listing is not None and not model.resolved:
        listing = model.listing
        if locked.repo != listing.repo or not _same_revision(listing.revision, locked.revision):
            raise LockError(
                f"lock for {model.id} is {locked.repo}@{locked.revision}, the catalog lists "
                f"{listing.repo}@{listing.revision}"
            )
        files = tuple(
            ModelFile(
                f.name,
                f.size,
                f.sha256,
                (HubPart(locked.repo, locked.revision, f.name, listing.hub),),
            )
            for f in sorted(locked.files, key=lambda f: f.name)
        )
        return replace(model, files=files, listing=replace(listing, revision=locked.revision))
    by_name = {f.name: f for f in locked.files}
    pinned = list(model.files)
    still: list = []
    for pending in model.pending:
        found = by_name.get(pending.name)
        part = pending.parts[0]
        assert isinstance(part, HubPart)  # PendingFile guarantees one hub part
        if found is None:
            still.append(pending)
            continue
        if part.repo != locked.repo or not _same_revision(part.revision, locked.revision):
            raise LockError(
                f"lock for {model.id}/{pending.name} is {locked.repo}@{locked.revision}, the "
                f"catalog pins {part.repo}@{part.revision}"
            )
        if pending.sha256 is not None and pending.sha256 != found.sha256:
            raise LockError(
                f"{model.id}/{pending.name}: the lock says sha256 {found.sha256}, the catalog "
                f"says {pending.sha256} ({pending.sha256_source})"
            )
        pinned.append(
            ModelFile(
                pending.name,
                found.size,
                found.sha256,
                (replace(part, revision=locked.revision),),
            )
        )
    return replace(model, files=tuple(pinned), pending=tuple(still))

"""The hub half of `jetvoice models pull` and all of `jetvoice models lock`.

Pinned hub files are downloaded and must hash to the catalog's sha256. Pending files (and models
whose file list comes from the hub) are downloaded, checked against the hub's own digests (and a
sourced sha256 where the catalog has one), and recorded in ``<models-dir>/.hub-resolved.json``;
`lock` re-hashes them and writes the pins into models/hub.lock.json.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from models.atomic_write import Written, install_file
from models.hub import HubClient, HubError, RemoteFile
from models.lock import (
    LOCK_PATH,
    RESOLVED_FILE,
    LockedFile,
    LockedModel,
    read_lock,
    write_lock,
)
from models.spec import HubPart, Model, ModelFile
from models.store import ModelStore, sha256_file

Echo = Callable[[str], None]
ClientFactory = Callable[[], HubClient]


def hub_work(model: Model) -> bool:
    """Whether pulling ``model`` may need a hub at all."""
    return bool(model.hub_parts()) or (model.listing is not None and not model.resolved)


def pull_pinned(
    model: Model, spec: ModelFile, store: ModelStore, client: HubClient, *, progress: bool
) -> None:
    """Download one pinned hub file and accept it only if it hashes to the catalog's sha256."""
    part = spec.parts[0]
    if len(spec.parts) != 1 or not isinstance(part, HubPart):
        raise HubError(f"{model.id}/{spec.name}: a hub file has exactly one hub part")
    dest = store.path(model.id) / spec.name
    tmp = client.download(
        part, dest, size=spec.size, progress=progress, label=f"{model.id}/{spec.name}"
    )

    def check(written: Written) -> None:
        if written.sha256 != spec.sha256:
            raise HubError(
                f"model {model.id}, file {spec.name}: downloaded sha256 {written.sha256}, the "
                f"catalog pins {spec.sha256}; the partial download was deleted"
            )

    install_file(tmp, dest, check=check, progress=progress, label=f"{model.id}/{spec.name}")
    store.record_verified(model.id, spec)


def pull_unpinned(
    model: Model, store: ModelStore, client: HubClient, *, progress: bool, say: Echo
) -> LockedModel:
    """Download a model's pending files (or its whole hub listing) and return what was found."""
    if model.listing is not None and not model.resolved:
        repo, revision, hub = model.listing.repo, model.listing.revision, model.listing.hub
        commit, remote = client.resolve(repo, revision)
        chosen = client.select(remote, model.listing.include)
        if not chosen:
            raise HubError(f"{repo}@{commit}: no file matches {model.listing.include}")
        wanted: list[tuple[str, RemoteFile | None, str | None, str]] = [
            (f.name, f, None, "") for f in chosen
        ]
    else:
        first = model.pending[0].parts[0]
        assert isinstance(first, HubPart)  # PendingFile guarantees it
        repo, revision, hub = first.repo, first.revision, first.hub
        remote = {}
        commit = revision
        if hub == "hf":
            commit, remote = client.resolve(repo, revision)
        wanted = [(p.name, remote.get(p.name), p.sha256, p.sha256_source) for p in model.pending]
    say(f"hub     {model.id}: {repo}@{commit} ({len(wanted)} files)")
    files: list[LockedFile] = []
    for name, listing_entry, sourced, sourced_from in wanted:
        files.append(
            _fetch_unpinned(
                model,
                store,
                client,
                part=HubPart(repo, commit, name, hub),
                remote=listing_entry,
                sourced=sourced,
                sourced_from=sourced_from,
                progress=progress,
            )
        )
    locked = LockedModel(model.id, hub, repo, commit, tuple(files))
    _record_resolved(store, locked)
    return locked


def _fetch_unpinned(
    model: Model,
    store: ModelStore,
    client: HubClient,
    *,
    part: HubPart,
    remote: RemoteFile | None,
    sourced: str | None,
    sourced_from: str,
    progress: bool,
) -> LockedFile:
    label = f"{model.id}/{part.file}"
    dest = store.path(model.id) / part.file
    size = remote.size if remote is not None and remote.size > 0 else None
    tmp = client.download(part, dest, size=size, progress=progress, label=label)
    checks: list[str] = []

    def check(written: Written) -> None:
        if sourced is not None:
            if written.sha256 != sourced:
                raise HubError(
                    f"{label}: sha256 {written.sha256} differs from the catalog's {sourced} "
                    f"({sourced_from})"
                )
            checks.append(f"matched the catalog's sha256 ({sourced_from})")
        if remote is not None:
            checks.append(remote.check(written.path, written.sha256))
        if not checks:
            raise HubError(
                f"{label}: neither the catalog nor the hub states a digest for it; not accepted"
            )

    written = install_file(tmp, dest, check=check, progress=progress, label=label)
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    return LockedFile(
        part.file, written.size, written.sha256, f"pulled {when}; " + "; ".join(checks)
    )


def _resolved_path(store: ModelStore) -> Path:
    return store.root / RESOLVED_FILE


def _record_resolved(store: ModelStore, locked: LockedModel) -> None:
    path = _resolved_path(store)
    recorded = read_lock(path)
    recorded[locked.model_id] = locked
    write_lock(path, recorded)


def lock(
    model_ids: Sequence[str],
    store: ModelStore,
    *,
    lock_path: Path = LOCK_PATH,
    progress: bool = True,
    say: Echo,
) -> list[str]:
    """Pin what pulls recorded for ``model_ids`` into ``lock_path`` after re-hashing every file.

    Returns the ids newly pinned; models already pinned are left alone. Raises HubError naming
    the model and file when a recorded file is missing or changed since its pull.
    """
    recorded = read_lock(_resolved_path(store))
    pins = read_lock(lock_path)
    added: list[str] = []
    for model_id in dict.fromkeys(model_ids):
        model = store.model(model_id)
        if model.pinned:
            continue
        entry = recorded.get(model_id)
        if entry is None:
            raise HubError(
                f"{model_id}: nothing recorded in {_resolved_path(store)}; run "
                f"`jetvoice models pull --model {model_id}` on a connected machine first"
            )
        for f in entry.files:
            path = store.path(model_id) / f.name
            if not path.is_file():
                raise HubError(f"{model_id}/{f.name}: recorded by a pull but missing ({path})")
            actual = sha256_file(path, progress=progress, label=f"{model_id}/{f.name}")
            if actual != f.sha256 or path.stat().st_size != f.size:
                raise HubError(
                    f"{model_id}/{f.name}: changed since it was pulled (sha256 {actual}, "
                    f"recorded {f.sha256})"
                )
        pins[model_id] = entry
        added.append(model_id)
        say(f"locked  {model_id}: {entry.repo}@{entry.revision}, {len(entry.files)} files")
    if added:
        write_lock(lock_path, pins)
        say(f"wrote {lock_path}: commit it so every machine gets the same pins")
    return added

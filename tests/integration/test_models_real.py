"""The real cpu-profile weights, as `jetvoice models pull --profile cpu` left them.

Skipped when they have not been pulled into the default store ($JETVOICE_MODELS_DIR or
models/weights).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.catalog import PROFILES
from models.paths import profile_paths
from models.provision import check_kokoro, verify
from models.store import ModelStore, sha256_file

PROFILE = "cpu"


@pytest.fixture(scope="module")
def store() -> ModelStore:
    store = ModelStore.default()
    problems = verify(PROFILE, store, quick=True, progress=False)
    if problems:
        pytest.skip(
            f"cpu models not pulled into {store.root} ({problems[0]}); "
            "run `jetvoice models pull --profile cpu`"
        )
    return store


def test_verify_passes(store: ModelStore) -> None:
    assert verify(PROFILE, store, progress=False) == []


def test_every_file_really_hashes_to_the_catalog(store: ModelStore) -> None:
    # Bypasses the verified cache: this is the check that the catalog's numbers are the truth.
    for model_id in PROFILES[PROFILE].model_ids():
        for spec in store.model(model_id).files:
            path = store.file(model_id, spec.name)
            assert path.stat().st_size == spec.size, f"{model_id}/{spec.name}"
            assert sha256_file(path, progress=False) == spec.sha256, f"{model_id}/{spec.name}"


def test_one_corrupt_byte_fails_verify_naming_the_model(store: ModelStore, tmp_path: Path) -> None:
    model_id = PROFILES[PROFILE].stt
    copy = ModelStore(tmp_path, store.catalog)
    for spec in store.model(model_id).files:
        dest = copy.file(model_id, spec.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A copy, never a link: the byte below must not reach the real store.
        shutil.copyfile(store.file(model_id, spec.name), dest)
    assert copy.verify(model_id, progress=False) == []
    target = copy.file(model_id, "model.bin")
    with target.open("r+b") as fh:
        fh.seek(target.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    [problem] = copy.verify(model_id, progress=False)
    assert (problem.model_id, problem.file, problem.kind) == (model_id, "model.bin", "sha256")
    assert model_id in str(problem)
    assert store.verify(model_id, progress=False) == []


def test_profile_paths_point_at_loadable_kokoro(store: ModelStore) -> None:
    paths = profile_paths(PROFILE, store)
    assert (paths.stt_dir / "model.bin").is_file()
    assert paths.llm_path.suffix == ".gguf"
    voices = check_kokoro(paths.tts_path, paths.voices_path)
    assert "af_heart" in voices and len(voices) == 54

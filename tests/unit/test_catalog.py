"""The catalog is consistent: profiles point at real models, every file has a usable recipe."""

from __future__ import annotations

import re

import pytest

from models.catalog import (
    CATALOG,
    DEFAULT_PROFILE,
    MODELS,
    PROFILES,
    HubPart,
    Model,
    ModelFile,
    PackagePart,
    Profile,
)
from models.spec import Catalog

SHA256 = re.compile(r"[0-9a-f]{64}")


def test_default_profile_is_cpu_and_defined() -> None:
    assert DEFAULT_PROFILE == "cpu"
    assert DEFAULT_PROFILE in PROFILES


def test_every_profile_references_existing_models_of_the_right_kind() -> None:
    for profile in PROFILES.values():
        kinds = ("stt", "llm", "tts", "voices")
        for kind, model_id in zip(kinds, profile.model_ids(), strict=True):
            assert model_id in MODELS, f"{profile.name}: unknown model {model_id}"
            assert MODELS[model_id].kind == kind


def test_ids_unique_and_keys_match() -> None:
    assert all(key == model.id for key, model in MODELS.items())
    assert all(key == profile.name for key, profile in PROFILES.items())
    assert len({m.id for m in MODELS.values()}) == len(MODELS)


def test_files_have_full_sha256_positive_sizes_and_parts() -> None:
    for model in MODELS.values():
        assert model.files or model.pending or model.listing, model.id
        assert model.licence and model.provenance, model.id
        for f in model.files:
            assert SHA256.fullmatch(f.sha256), f"{model.id}/{f.name}"
            assert f.size > 0
            assert f.parts
            for part in f.parts:
                assert isinstance(part, PackagePart | HubPart)
                if isinstance(part, PackagePart):
                    assert part.registry in ("pypi", "npm")
                    assert re.fullmatch(r"\d+(\.\d+)+", part.version), "versions are exact pins"


def test_every_pypi_part_pins_the_wheel_of_its_release() -> None:
    pins: dict[tuple[str, str], object] = {}
    for model in MODELS.values():
        parts = [p for f in model.files for p in f.parts if isinstance(p, PackagePart)]
        for part in parts:
            if part.registry != "pypi":
                continue
            assert part.wheel is not None, f"{model.id}: {part.package} has no wheel pin"
            prefix = f"{part.package.replace('-', '_')}-{part.version}-"
            assert part.wheel.filename.startswith(prefix), part.wheel.filename
            # One release, one wheel: every part of a package names the same pin.
            assert pins.setdefault((part.package, part.version), part.wheel) == part.wheel


def test_entries_name_one_of_the_files() -> None:
    for model in MODELS.values():
        if model.kind == "stt" or model.listing is not None:
            assert model.entry is None, "faster-whisper, onnx-asr and vLLM take the directory"
        else:
            names = [f.name for f in model.files] + [f.name for f in model.pending]
            assert model.entry is not None and model.entry in names


def test_cpu_profile_uses_the_registry_models() -> None:
    cpu = PROFILES["cpu"]
    assert cpu.device == "cpu"
    assert cpu.model_ids() == (
        "whisper-tiny.en",
        "qwen2.5-coder-0.5b-instruct-q4_k_m",
        "kokoro-v1.0-int8",
        "kokoro-voices-v1.0",
    )
    assert MODELS["kokoro-v1.0-int8"].files[0].size == 92_361_271
    assert MODELS["kokoro-v1.0-int8"].files[0].sha256.startswith("6e742170")
    gguf = MODELS["qwen2.5-coder-0.5b-instruct-q4_k_m"].files[0]
    assert (gguf.size, gguf.sha256[:8]) == (491_400_064, "1d961463")
    assert "no licence metadata" in MODELS["qwen2.5-coder-0.5b-instruct-q4_k_m"].licence


def test_voices_file_has_one_part_per_voice() -> None:
    voices = MODELS["kokoro-voices-v1.0"].files[0]
    assert voices.transform == "kokoro-voices-npz"
    stems = [p.member.rsplit("/", 1)[-1] for p in voices.parts if isinstance(p, PackagePart)]
    assert "af_heart.bin" in stems
    assert len(stems) == len(set(stems)) == 54


def test_pull_command_prefers_the_profile_then_the_model() -> None:
    assert CATALOG.pull_command("whisper-tiny.en") == "jetvoice models pull --profile cpu"
    assert CATALOG.pull_command("whisper-base") == "jetvoice models pull --model whisper-base"


def test_catalog_is_read_only() -> None:
    with pytest.raises(TypeError):
        MODELS["x"] = MODELS["whisper-base"]  # type: ignore[index]


def _model(model_id: str, kind: str = "stt") -> Model:
    part = PackagePart("pypi", "pkg", "1.0", "pkg/x.bin")
    return Model(model_id, kind, "d", "MIT", "p", (ModelFile("x.bin", 1, "0" * 64, (part,)),))  # type: ignore[arg-type]


def test_catalog_rejects_a_profile_with_an_unknown_or_wrong_kind_model() -> None:
    models = {m.id: m for m in (_model("s"), _model("l", "llm"), _model("t", "tts"))}
    bad = Profile("p", "d", stt="s", llm="l", tts="t", voices="nope")
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        Catalog(models, {"p": bad}, "p")
    wrong = Profile("p", "d", stt="l", llm="l", tts="t", voices="t")
    with pytest.raises(ValueError, match="l is not a stt model"):
        Catalog(models, {"p": wrong}, "p")


def test_model_file_rejects_short_hash_and_bad_names() -> None:
    part = PackagePart("pypi", "pkg", "1.0", "pkg/x.bin")
    with pytest.raises(ValueError, match="64 lowercase hex"):
        ModelFile("x.bin", 1, "abc", (part,))
    with pytest.raises(ValueError, match="plain file name"):
        ModelFile("a/x.bin", 1, "0" * 64, (part,))
    with pytest.raises(ValueError, match="positive"):
        ModelFile("x.bin", 0, "0" * 64, (part,))

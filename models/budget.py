"""Memory budgets: what each part of the voice loop may use on one machine, and the vLLM flags
that follow from it.

On a Jetson the CPU and GPU share one pool of memory, so the budget is the whole board:
vLLM takes ``gpu_memory_utilization`` x total for weights, activations, CUDA graphs and KV cache,
and everything else (the OS, jetvoice's process with Whisper, Kokoro, Silero, Smart Turn and
WebRTC) lives in the rest, with headroom left over. On an x86 GPU box the budget is the GPU's
memory (the host's RAM is not the constraint). All sizes are MiB.

The numbers are a plan, not a measurement: `jetvoice doctor` compares the machine with it, and
the figures marked as estimates in the catalog should be replaced by what `tegrastats` shows on a
device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIB = 1 << 20


@dataclass(frozen=True)
class KVShape:
    """What one token of context costs in vLLM's KV cache: K and V for every layer."""

    layers: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int = 2  # vLLM's default KV dtype follows the fp16/bf16 activations

    @property
    def bytes_per_token(self) -> int:
        """2 (K and V) x layers x kv heads x head dim x bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes

    def mib(self, tokens: int) -> int:
        """KV cache for ``tokens`` tokens, rounded up to a whole MiB."""
        return math.ceil(self.bytes_per_token * tokens / MIB)


@dataclass(frozen=True)
class VLLMSettings:
    """vLLM's memory-related flags for one profile (the rest are fixed in `vllm_command`)."""

    gpu_memory_utilization: float
    max_model_len: int
    max_num_seqs: int
    # CUDA graphs cost 1-3 GiB (vLLM's own log line); eager mode gives that back, slower decode.
    enforce_eager: bool = False
    port: int = 8000

    def __post_init__(self) -> None:
        if not 0.1 <= self.gpu_memory_utilization <= 0.95:
            raise ValueError(f"gpu_memory_utilization {self.gpu_memory_utilization} is implausible")
        if self.max_model_len < 512 or self.max_num_seqs < 1:
            raise ValueError("max_model_len must be >= 512 and max_num_seqs >= 1")

    def extra_args(self) -> tuple[str, ...]:
        """Flags to append to `vllm serve` (beyond model, port, max-model-len, caching, tools)."""
        args = [
            "--gpu-memory-utilization",
            f"{self.gpu_memory_utilization:.2f}",
            "--max-num-seqs",
            str(self.max_num_seqs),
        ]
        if self.enforce_eager:
            args.append("--enforce-eager")
        return tuple(args)


@dataclass(frozen=True)
class MemoryBudget:
    """One machine's memory plan, in MiB.

    ``total``: the memory the budget covers (the board's RAM on a Jetson, the GPU's on x86).
    Inside vLLM's pool (``gpu_memory_utilization`` x total): ``llm_weights``, ``llm_runtime``
    (activations, CUDA context and graphs) and ``kv_cache`` sized for ``max_num_seqs`` full
    sequences of ``max_model_len`` tokens. Outside it: ``stt``, ``tts``, ``app`` (the jetvoice
    process: Python, pipecat, onnxruntime for VAD and Smart Turn, WebRTC) and ``system`` (the OS,
    kernel carve-outs, Docker; 0 where the budget is a discrete GPU's memory). ``headroom`` is
    what is left, and must stay positive. ``unified`` is True on a Jetson.
    """

    total: int
    llm_weights: int
    llm_runtime: int
    kv_cache: int
    stt: int
    tts: int
    app: int
    system: int
    unified: bool
    note: str = ""

    def vllm_pool(self, settings: VLLMSettings) -> int:
        """MiB vLLM reserves: ``gpu_memory_utilization`` x total, rounded down."""
        return math.floor(self.total * settings.gpu_memory_utilization)

    def llm_need(self) -> int:
        """What vLLM must fit in its pool."""
        return self.llm_weights + self.llm_runtime + self.kv_cache

    def outside(self) -> int:
        """Everything that is not vLLM."""
        return self.stt + self.tts + self.app + self.system

    def headroom(self, settings: VLLMSettings | None) -> int:
        """MiB left after vLLM's pool (or the LLM's own need, without vLLM) and the rest."""
        llm = self.vllm_pool(settings) if settings is not None else self.llm_need()
        return self.total - llm - self.outside()

    def problems(self, settings: VLLMSettings | None, kv: KVShape | None) -> list[str]:
        """Arithmetic the plan must satisfy; empty when it adds up."""
        found: list[str] = []
        if settings is not None:
            pool = self.vllm_pool(settings)
            if self.llm_need() > pool:
                found.append(
                    f"vLLM needs {self.llm_need()} MiB (weights {self.llm_weights} + runtime "
                    f"{self.llm_runtime} + KV {self.kv_cache}) but its pool is {pool} MiB"
                )
            if kv is not None:
                kv_min = kv.mib(settings.max_model_len * settings.max_num_seqs)
                if self.kv_cache < kv_min:
                    found.append(
                        f"KV cache {self.kv_cache} MiB < {kv_min} MiB for {settings.max_num_seqs} "
                        f"x {settings.max_model_len} tokens at {kv.bytes_per_token} B/token"
                    )
        if self.headroom(settings) <= 0:
            found.append(f"no headroom: {self.headroom(settings)} MiB")
        return found

    def rows(self, settings: VLLMSettings | None) -> list[tuple[str, int]]:
        """(label, MiB) lines for a table, ending with the headroom."""
        rows = [
            ("LLM weights", self.llm_weights),
            ("LLM runtime (activations, CUDA context/graphs)", self.llm_runtime),
            ("LLM KV cache", self.kv_cache),
        ]
        if settings is not None:
            rows.append(
                (
                    f"= vLLM pool ({settings.gpu_memory_utilization:.2f} x total)",
                    self.vllm_pool(settings),
                )
            )
        rows += [
            ("STT", self.stt),
            ("TTS", self.tts),
            ("jetvoice process (Python, VAD, Smart Turn, WebRTC)", self.app),
            ("OS, carve-outs, Docker", self.system),
            ("headroom", self.headroom(settings)),
        ]
        return rows

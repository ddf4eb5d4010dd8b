"""Time to first token with and without the system prompt's prefix in the LLM server's cache.

The same server and model the agent uses are started on their own; each request streams one
completion. "cached" repeats the agent's exact system prompt, as every turn of a conversation
does; "uncached" puts a fresh nonce in front of it, so no prefix can be reused.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from dataclasses import dataclass

import httpx

from pipeline.config import DEFAULT_SYSTEM_PROMPT, LLMConfig
from services.llm_server import LLMEndpoint, LLMServer

QUESTIONS = (
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Name a fruit that is yellow.",
    "What day comes after Monday?",
    "Is the sun a star?",
)


@dataclass(frozen=True)
class PrefixCacheResult:
    """Median and all time-to-first-token samples (milliseconds) for both cases."""

    cached_ms: tuple[float, ...]
    uncached_ms: tuple[float, ...]
    prompt: str

    @property
    def cached_p50(self) -> float:
        """Median with the prefix reused."""
        return statistics.median(self.cached_ms)

    @property
    def uncached_p50(self) -> float:
        """Median with a cold prefix."""
        return statistics.median(self.uncached_ms)

    def as_json(self) -> dict[str, object]:
        """For the benchmark's JSON file."""
        return {
            "cached_ttft_ms": {"p50": round(self.cached_p50, 1), "samples": self.cached_ms},
            "uncached_ttft_ms": {"p50": round(self.uncached_p50, 1), "samples": self.uncached_ms},
            "system_prompt_chars": len(self.prompt),
        }


async def _ttft(client: httpx.AsyncClient, endpoint: LLMEndpoint, system: str, user: str) -> float:
    body = {
        "model": endpoint.model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        "max_tokens": 8,
        "temperature": 0.0,
        "stream": True,
    }
    started = time.perf_counter()
    async with client.stream("POST", f"{endpoint.base_url}/chat/completions", json=body) as reply:
        reply.raise_for_status()
        async for line in reply.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0].get("delta", {})
            if delta.get("content"):
                return (time.perf_counter() - started) * 1000
    raise RuntimeError("the LLM server streamed no text")


async def measure(
    config: LLMConfig, system_prompt: str = DEFAULT_SYSTEM_PROMPT
) -> PrefixCacheResult:
    """Start a server like the agent's, then time interleaved cached and uncached requests."""
    server = LLMServer(config)
    try:
        endpoint = await server.start()
        timeout = httpx.Timeout(60.0, connect=2.0)
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            await _ttft(client, endpoint, system_prompt, "Hello.")  # warm-up, fills the cache
            cached: list[float] = []
            uncached: list[float] = []
            for question in QUESTIONS:
                nonce = f"[{uuid.uuid4().hex}] "
                uncached.append(await _ttft(client, endpoint, nonce + system_prompt, question))
                # The nonce evicted the prompt; one request puts it back, then a new question
                # reuses the system prompt's prefix, as the next turn of a conversation does.
                await _ttft(client, endpoint, system_prompt, "Hello.")
                cached.append(await _ttft(client, endpoint, system_prompt, question))
    finally:
        await server.close()
    return PrefixCacheResult(tuple(cached), tuple(uncached), system_prompt)


def run_probe(config: LLMConfig) -> PrefixCacheResult:
    """Blocking wrapper for the CLI."""
    return asyncio.run(measure(config))

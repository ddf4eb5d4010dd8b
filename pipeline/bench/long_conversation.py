"""Time to first token as a conversation grows, with the rolling context window.

``jetvoice bench --long-conversation``: the profile's LLM server is started on its own and
driven directly over its OpenAI-compatible endpoint, not through 30 spoken turns. Each turn
sends exactly what the agent sends (the byte-identical system prompt, the window's summary
exchange, the last turns verbatim, the new question), streams the answer and times its first
token. After each answer the window folds older turns with the same summary request the agent
makes; that happens between turns, as it does off the agent's critical path, and is not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from pipeline.config import DEFAULT_SYSTEM_PROMPT, ContextWindowConfig, LLMConfig, LLMServerKind
from pipeline.conversation.context_window import (
    Compactor,
    Message,
    prewarm_with_llm,
    summarize_folded,
)
from services.llm_server import LLMEndpoint, LLMServer

QUESTIONS = (
    "My name is Sam and I live with my sister Ana.",
    "What is a good name for a grey cat?",
    "How long should I boil an egg for a soft yolk?",
    "Remind me, what is my sister called?",
    "Give me one tip for sleeping better.",
    "What is the capital of Portugal?",
    "How many minutes are in three hours?",
    "Suggest a quick vegetarian dinner.",
    "What is a fun fact about octopuses?",
    "How do I say thank you in Spanish?",
    "What should I water more in summer, cactus or basil?",
    "Tell me a short joke about socks.",
    "How far is the moon, roughly?",
    "What is my name?",
    "Name a board game for four people.",
    "Why is the sky blue, in one sentence?",
    "What temperature is good for a bedroom at night?",
    "Suggest a name for a small boat.",
    "How many legs does a spider have?",
    "What rhymes with orange?",
    "Give me a word that means happy.",
    "What do bees make?",
    "Which is heavier, a kilo of feathers or a kilo of iron?",
    "What is twelve times eleven?",
    "Name a calm piece of classical music.",
    "What should I pack for a picnic?",
    "How do I keep bread fresh longer?",
    "What day comes after Thursday?",
    "What was the name of my sister again?",
    "Thanks, that is all for now.",
)
ANSWER_TOKENS = 48


@dataclass(frozen=True)
class TurnSample:
    """One turn: its time to first token and how long its prompt was."""

    conversation: int
    turn: int
    ttft_ms: float
    prompt_chars: int
    context_turns: int


async def _stream_turn(
    client: httpx.AsyncClient, endpoint: LLMEndpoint, messages: Sequence[Message]
) -> tuple[float, str]:
    """Stream one answer; (milliseconds to the first text, the whole text)."""
    body = {
        "model": endpoint.model,
        "messages": list(messages),
        "max_tokens": ANSWER_TOKENS,
        "temperature": 0.0,
        "stream": True,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    headers = {"Authorization": f"Bearer {endpoint.api_key}"}
    url = f"{endpoint.base_url}/chat/completions"
    async with client.stream("POST", url, json=body, headers=headers) as reply:
        reply.raise_for_status()
        async for line in reply.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            text = choices[0].get("delta", {}).get("content")
            if text:
                first = first if first is not None else time.perf_counter()
                parts.append(text)
    if first is None:
        raise RuntimeError("the LLM server streamed no text")
    return (first - started) * 1000, "".join(parts).strip()


async def converse(
    endpoint: LLMEndpoint,
    window: ContextWindowConfig | None,
    turns: int,
    *,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    prewarm_cache: bool = True,
    conversation: int = 1,
    progress: Callable[[str], None] = lambda _line: None,
) -> tuple[list[TurnSample], Compactor | None]:
    """Hold a ``turns``-turn conversation; without ``window`` the context grows unbounded."""
    timeout = httpx.Timeout(120.0, connect=2.0)
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:

        async def summarize(previous: str, folded: Sequence[Message]) -> str:
            assert window is not None
            return await summarize_folded(
                endpoint,
                system_prompt,
                window,
                client,
                previous=previous or None,
                folded=folded,
            )

        async def prewarm(messages: Sequence[Message]) -> None:
            assert window is not None
            await prewarm_with_llm(
                endpoint,
                system_prompt,
                client,
                messages,
                timeout_secs=window.summary_timeout_secs,
            )

        compactor = (
            Compactor(window, summarize, prewarm=prewarm if prewarm_cache else None)
            if window is not None
            else None
        )
        context: list[Message] = []

        def get() -> list[Message]:
            return list(context)

        def set_(messages: list[Message]) -> None:
            context[:] = messages

        samples: list[TurnSample] = []
        for turn in range(1, turns + 1):
            question = QUESTIONS[(turn - 1) % len(QUESTIONS)]
            messages = [
                {"role": "system", "content": system_prompt},
                *context,
                {"role": "user", "content": question},
            ]
            ttft, answer = await _stream_turn(client, endpoint, messages)
            context.extend(
                [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ]
            )
            chars = sum(len(str(m["content"])) for m in messages)
            samples.append(
                TurnSample(conversation, turn, round(ttft, 1), chars, (len(messages) - 2) // 2)
            )
            progress(
                f"conversation {conversation}, turn {turn:2d}: "
                f"TTFT {ttft:7.1f} ms, prompt {chars:5d} chars"
            )
            if compactor is not None:
                await compactor.compact(get, set_)
    return samples, compactor


def _median_at(samples: Sequence[TurnSample], turn: int) -> float | None:
    """The median time to first token at ``turn`` over the conversations held."""
    values = [s.ttft_ms for s in samples if s.turn == turn]
    return round(statistics.median(values), 1) if values else None


def summary(samples: Sequence[TurnSample], compactors: Sequence[Compactor]) -> dict[str, Any]:
    """Turn 2 vs the last turn (each the median over the conversations: one turn of one
    conversation is one sample of a noisy machine), and medians of the first and last three
    turns (from turn 2)."""
    last = max(s.turn for s in samples)
    early = [s.ttft_ms for s in samples if 2 <= s.turn <= 4]
    late = [s.ttft_ms for s in samples if s.turn > last - 3]
    turn2, turn_last = _median_at(samples, 2), _median_at(samples, last)
    return {
        "conversations": len({s.conversation for s in samples}),
        "turn_2_ttft_ms": turn2,
        f"turn_{last}_ttft_ms": turn_last,
        "ratio": round(turn_last / turn2, 2) if turn2 and turn_last else None,
        "median_turns_2_4_ms": round(statistics.median(early), 1) if early else None,
        f"median_turns_{last - 2}_{last}_ms": round(statistics.median(late), 1) if late else None,
        "folds": sum(c.folds for c in compactors),
        "summary_fallbacks": sum(c.fallbacks for c in compactors),
    }


async def _run(
    config: LLMConfig, window: ContextWindowConfig | None, turns: int, conversations: int
) -> tuple[list[TurnSample], list[Compactor]]:
    server = LLMServer(config)
    samples: list[TurnSample] = []
    compactors: list[Compactor] = []
    try:
        endpoint = await server.start()
        timeout = httpx.Timeout(120.0, connect=2.0)
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            # Warm-up: the system prompt's prefix in the cache, as the agent's start-up does.
            await _stream_turn(
                client,
                endpoint,
                [
                    {"role": "system", "content": config.system_prompt},
                    {"role": "user", "content": "Hi."},
                ],
            )
        for conversation in range(1, conversations + 1):
            held, compactor = await converse(
                endpoint,
                window,
                turns,
                system_prompt=config.system_prompt,
                conversation=conversation,
                progress=_progress,
            )
            samples += held
            if compactor is not None:
                compactors.append(compactor)
        return samples, compactors
    finally:
        await server.close()


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_long_conversation(args: argparse.Namespace) -> int:
    """``jetvoice bench --long-conversation``: print and (with --json) write the result."""
    from models.paths import profile_paths
    from models.store import ModelStore, default_models_dir

    paths = profile_paths(args.profile, ModelStore(args.models_dir or default_models_dir()))
    server: LLMServerKind = "vllm" if paths.device == "cuda" else "llamacpp"
    config = LLMConfig(server=server, model_path=paths.llm_path)
    turns = args.turns or len(QUESTIONS)
    conversations = args.repeat or 3
    # The same summarizer the agent uses on this server (see build_agent_config).
    summarizer: Literal["llm", "digest"] = "digest" if server == "llamacpp" else "llm"
    window = None if args.no_context_window else ContextWindowConfig(summarizer=summarizer)
    _progress(
        f"long conversation: {conversations} x {turns} turns on profile {args.profile} ({server}), "
        f"context window {'off' if window is None else f'keep {window.keep_turns} turns'}"
    )
    samples, compactors = asyncio.run(_run(config, window, turns, conversations))
    result = {
        "profile": args.profile,
        "llm_server": server,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "context_window": None if window is None else asdict(window),
        "turns": [asdict(s) for s in samples],
        "summary": summary(samples, compactors),
    }
    print(json.dumps(result["summary"], indent=2))
    if args.json is not None:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
        _progress(f"wrote {path}")
    return 0

"""A rolling context window: the last turns verbatim, older ones folded into a short summary.

Every LLM request is the system prompt (byte-identical, so the server's prefix cache keeps it),
then at most one summary exchange, then the last turns. Prompt length, and so time to first
token, stays flat however long a conversation runs. Folding happens after a turn's answer, off
the critical path: it waits for one short non-streaming completion from the same local
server, and falls back to a truncated plain-text digest when that fails or times out.

Folding is batched: nothing changes until ``keep_turns + fold_every`` turns are in the context,
then the oldest are folded down to ``keep_turns``. Between folds the request's prefix stays the
same, so the server reuses its cache for everything but the newest turn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from loguru import logger

from pipeline.config import ContextWindowConfig
from services.llm_server import LLMEndpoint

Message = dict[str, Any]
Summarize = Callable[[str, Sequence[Message]], Awaitable[str]]
Prewarm = Callable[[Sequence[Message]], Awaitable[None]]

# What a failed summary request can raise (transport, HTTP status, a malformed answer).
SUMMARY_ERRORS = (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError)
SUMMARY_PREFIX = "Summary of our conversation so far: "
SUMMARY_ACK = "Got it."
SUMMARY_INSTRUCTION = (
    "Summarize the conversation above in at most three short sentences for your own memory. "
    "Keep names, numbers, preferences and anything the user asked you to remember. "
    "Reply with the summary only."
)


def is_summary(messages: Sequence[Message]) -> bool:
    """Whether ``messages`` starts with the window's summary exchange."""
    return (
        len(messages) >= 2
        and messages[0].get("role") == "user"
        and str(messages[0].get("content", "")).startswith(SUMMARY_PREFIX)
        and messages[1].get("role") == "assistant"
    )


def summary_messages(summary: str) -> list[Message]:
    """The summary as a user/assistant exchange: every chat template accepts that order."""
    return [
        {"role": "user", "content": SUMMARY_PREFIX + summary},
        {"role": "assistant", "content": SUMMARY_ACK},
    ]


def turn_starts(messages: Sequence[Message]) -> list[int]:
    """Indices of the user messages that start a turn (consecutive user messages are one)."""
    starts: list[int] = []
    previous = None
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "user" and previous != "user":
            starts.append(index)
        previous = role
    return starts


def text_of(message: Message) -> str:
    """A message's text (string content, or the text parts of a list)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return ""


def digest(previous: str | None, folded: Sequence[Message], max_chars: int) -> str:
    """A plain-text stand-in for the summary: the newest ``max_chars`` of the folded turns."""
    lines = [previous] if previous else []
    for message in folded:
        text = text_of(message)
        if text:
            speaker = "User" if message.get("role") == "user" else "Assistant"
            lines.append(f"{speaker}: {text}")
    joined = " ".join(lines)
    return joined if len(joined) <= max_chars else "…" + joined[-(max_chars - 1) :]


@dataclass(frozen=True)
class Fold:
    """What one compaction step replaces: the messages before ``keep_from``."""

    previous_summary: str | None
    folded: tuple[Message, ...]
    keep_from: int


class ContextWindow:
    """The window's rules over a list of context messages (no I/O; see :class:`Compactor`)."""

    def __init__(self, config: ContextWindowConfig) -> None:
        self.config = config

    def plan(self, messages: Sequence[Message]) -> Fold | None:
        """The fold due now, or None while the context is within its bounds."""
        has_summary = is_summary(messages)
        body_start = 2 if has_summary else 0
        starts = [i for i in turn_starts(messages) if i >= body_start]
        keep = self.config.keep_turns
        if len(starts) <= keep + self.config.fold_every:
            return None
        keep_from = starts[-keep] if keep > 0 else len(messages)
        previous = text_of(messages[0])[len(SUMMARY_PREFIX) :] if has_summary else None
        return Fold(previous, tuple(messages[body_start:keep_from]), keep_from)

    def apply(self, messages: Sequence[Message], fold: Fold, summary: str) -> list[Message] | None:
        """``messages`` with the folded ones replaced by ``summary``.

        None when the context changed under the fold (the folded messages are no longer where
        they were): the next turn plans again.
        """
        body_start = fold.keep_from - len(fold.folded)
        current = messages[body_start : fold.keep_from]
        if len(current) != len(fold.folded) or any(
            a is not b for a, b in zip(current, fold.folded, strict=True)
        ):
            return None
        return [*summary_messages(summary), *messages[fold.keep_from :]]


async def summarize_folded(
    endpoint: LLMEndpoint,
    system_prompt: str,
    config: ContextWindowConfig,
    client: httpx.AsyncClient,
    *,
    previous: str | None,
    folded: Sequence[Message],
) -> str:
    """The new summary of the folded turns: a plain-text digest, or (``summarizer="llm"``) one
    short non-streaming completion with the same system prompt first (the server's cached
    prefix), then the folded turns, then the instruction.

    Raises:
        httpx.HTTPError, ValueError: the request failed or answered nothing usable.
    """
    if config.summarizer == "digest":
        return digest(previous, folded, config.digest_chars)
    messages: list[Message] = [{"role": "system", "content": system_prompt}]
    if previous:
        messages += summary_messages(previous)
    messages += [{"role": m.get("role", "user"), "content": text_of(m)} for m in folded]
    messages.append({"role": "user", "content": SUMMARY_INSTRUCTION})
    body = {
        "model": endpoint.model,
        "messages": messages,
        "max_tokens": config.summary_max_tokens,
        "temperature": 0.2,
        "stream": False,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    response = await client.post(
        f"{endpoint.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {endpoint.api_key}"},
        timeout=config.summary_timeout_secs,
    )
    response.raise_for_status()
    text = str(response.json()["choices"][0]["message"].get("content") or "").strip()
    if "</think>" in text:
        text = text.split("</think>", 1)[1].strip()
    if not text:
        raise ValueError("the LLM returned an empty summary")
    return " ".join(text.split())[: config.digest_chars]


def _as_sent(message: Message) -> Message:
    """A context message as the LLM client sends it: tool calls and results as they are."""
    if message.get("tool_calls") or message.get("role") == "tool":
        return message
    return {"role": message.get("role", "user"), "content": text_of(message)}


async def prewarm_with_llm(
    endpoint: LLMEndpoint,
    system_prompt: str,
    client: httpx.AsyncClient,
    messages: Sequence[Message],
    *,
    timeout_secs: float,
    tools: Sequence[Message] = (),
) -> None:
    """Have the server evaluate the folded context once (one token), so the next turn finds
    it in the prefix cache instead of paying for the new summary and kept turns itself.

    ``tools`` are the session's tools as its requests carry them: they render into the prompt
    right after the system prompt, so without them nothing past the system prompt would match.

    Raises:
        httpx.HTTPError: the request failed.
    """
    body: Message = {
        "model": endpoint.model,
        "messages": [
            {"role": "system", "content": system_prompt},
            *(_as_sent(m) for m in messages),
        ],
        "max_tokens": 1,
        "temperature": 0.0,
        "stream": False,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    if tools:
        body["tools"] = list(tools)
    response = await client.post(
        f"{endpoint.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {endpoint.api_key}"},
        timeout=timeout_secs,
    )
    response.raise_for_status()


class Compactor:
    """Folds one context's older turns after each answer; at most one fold runs at a time.

    After a fold, ``prewarm`` (when given) gets the new context: everything after the system
    prompt changed, and re-evaluating it now, while the bot is still speaking, keeps that cost
    out of the next turn's time to first token.
    """

    def __init__(
        self,
        config: ContextWindowConfig,
        summarize: Summarize,
        *,
        prewarm: Prewarm | None = None,
        session_id: str = "",
    ) -> None:
        self.window = ContextWindow(config)
        self._summarize = summarize
        self._prewarm = prewarm
        self._session_id = session_id
        self._busy = False
        self.folds = 0
        self.fallbacks = 0

    async def compact(
        self, get: Callable[[], list[Message]], set_: Callable[[list[Message]], None]
    ) -> bool:
        """Fold if due (reading and writing the context through ``get``/``set_``); whether the
        context changed."""
        if self._busy:
            return False
        fold = self.window.plan(get())
        if fold is None:
            return False
        self._busy = True
        try:
            try:
                summary = await self._summarize(fold.previous_summary or "", fold.folded)
            except SUMMARY_ERRORS as error:
                logger.warning(f"[{self._session_id}] summary failed ({error!r}); using a digest")
                self.fallbacks += 1
                summary = digest(
                    fold.previous_summary, fold.folded, self.window.config.digest_chars
                )
            updated = self.window.apply(get(), fold, summary)
            if updated is None:
                return False
            set_(updated)
            self.folds += 1
            if self._prewarm is not None:
                try:
                    await self._prewarm(updated)
                except SUMMARY_ERRORS as error:
                    logger.debug(f"[{self._session_id}] prewarm failed: {error!r}")
            return True
        finally:
            self._busy = False

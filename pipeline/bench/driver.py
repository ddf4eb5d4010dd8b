"""Drives a running server as a person would: one real WebRTC call at a time, turn by turn.

Per call: connect, let the greeting finish, then for each turn speak the clip in real time
(the microphone stays silent afterwards), wait for the bot's first non-silent sample, wait for
it to finish, and collect the server's latency message and the transcript. Every await is
bounded; a turn that times out is recorded as failed and the run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from aiortc.mediastreams import MediaStreamError

from pipeline.bench.client.loopback_caller import LoopbackCaller
from pipeline.bench.corpus import CallPlan, Utterance
from pipeline.bench.measurement import TurnResult, derive_stages, smart_turn_fields
from pipeline.webrtc.signalling import ServerMessage

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DriverConfig:
    """How long the caller waits for each thing, and how it paces a conversation."""

    connect_timeout_s: float = 30.0
    greeting_timeout_s: float = 30.0
    answer_timeout_s: float = 30.0
    """From the end of speech to the bot's first voice; past this the turn failed. The stock
    pipeline's silence fallback alone is 3 s, its beam-search STT a few seconds more."""
    answer_end_timeout_s: float = 90.0
    """Bound on the bot's whole answer."""
    bot_quiet_s: float = 1.2
    """Silence that means the bot finished (longer than any pause between its clauses)."""
    min_trailing_silence_s: float = 2.5
    """Silence on the microphone after each turn before the next one may start."""
    pause_between_turns_s: float = 0.5
    latency_message_wait_s: float = 3.0
    """After the answer, how long to wait for a latency message still in flight."""
    warmup_turns: int = 1


@dataclass(frozen=True)
class CallRecord:
    """What one call (not one turn) measured."""

    index: int
    conversation: str
    connect_s: float | None
    greeting_ms: float | None
    """From connect() returning to the greeting's first voice."""
    error: str | None


# Server errors after which the bot apologises instead of answering: the turn failed.
FAILING_STAGES = ("llm", "stt")


def _is_latency(message: ServerMessage) -> bool:
    # The greeting's message (measured from client_connected) arrives before any turn starts;
    # one inside a turn is that turn's, even when the server lost the user's silence.
    return message.type == "latency" and isinstance(message.data.get("data"), dict)


def pick_latency(
    messages: Sequence[ServerMessage], since: float, first_voice: float | None
) -> tuple[ServerMessage | None, int]:
    """The latency message for the turn that produced `first_voice`, and how many arrived.

    The server sends it as the bot starts speaking, just before its audio reaches the client;
    when a turn was split in two, the last one before the voice (plus a margin) is the one heard.
    """
    candidates = [m for m in messages if m.received_at > since and _is_latency(m)]
    if not candidates:
        return None, 0
    chosen = candidates[0]
    if first_voice is not None:
        before = [m for m in candidates if m.received_at <= first_voice + 0.5]
        chosen = before[-1] if before else candidates[0]
    return chosen, len(candidates)


def server_errors(messages: Sequence[ServerMessage], since: float) -> tuple[str, ...]:
    """``stage: message`` of each jetvoice ``error`` message received after `since`."""
    errors = []
    for message in messages:
        data = message.data.get("data")
        if (
            message.received_at > since
            and message.type == "error"
            and message.data.get("label") == "jetvoice"
            and isinstance(data, dict)
        ):
            errors.append(f"{data.get('stage', 'other')}: {data.get('message', '')}")
    return tuple(errors)


def _texts(messages: Sequence[ServerMessage], since: float, kind: str) -> str | None:
    parts: list[str] = []
    for message in messages:
        if message.received_at <= since or message.type != kind:
            continue
        data = message.data.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            continue
        if kind == "user-transcription" and data.get("final") is False:
            continue
        parts.append(data["text"].strip())
    text = " ".join(p for p in parts if p)
    return text or None


async def _wait_answer_end(
    caller: LoopbackCaller, first_voice: float, config: DriverConfig, *, llm_since: float | None
) -> float:
    """When the bot's answer ended: the LLM is done and no voice for `bot_quiet_s`.

    Silence alone could be a pause while the next clause is synthesized, so for an answer
    (`llm_since`: when the turn started; None for the greeting, which has no LLM) the caller
    also waits for the RTVI ``bot-llm-stopped``: bounded, and not required, so a server
    without RTVI still ends on silence.
    """
    deadline = time.monotonic() + config.answer_end_timeout_s
    if llm_since is not None:
        with contextlib.suppress(TimeoutError):
            await caller.wait_for_message(
                "bot-llm-stopped", timeout=config.answer_end_timeout_s, after=llm_since
            )
    while True:
        remaining = max(0.1, deadline - time.monotonic())
        ended = await caller.wait_for_silence(config.bot_quiet_s, remaining, after=first_voice)
        # Speaking again after the "end" means it was only a pause between clauses.
        started = [m.received_at for m in caller.messages if m.type == "bot-started-speaking"]
        stopped = [m.received_at for m in caller.messages if m.type == "bot-stopped-speaking"]
        if not started or (stopped and stopped[-1] >= started[-1]):
            return ended
        if time.monotonic() >= deadline:
            raise TimeoutError("the bot did not stop speaking")
        await asyncio.sleep(0.1)


class CallDriver:
    """Speaks planned calls to one server and records each turn."""

    def __init__(
        self, base_url: str, variant: str, config: DriverConfig, progress: Progress
    ) -> None:
        """Prepare to call `base_url`; `variant` labels the results."""
        self._base_url = base_url
        self._variant = variant
        self._config = config
        self._progress = progress
        self.turns: list[TurnResult] = []
        self.calls: list[CallRecord] = []

    async def run(self, plans: Sequence[CallPlan]) -> None:
        """Run every call in order, one at a time."""
        total = sum(len(p.turns) for p in plans)
        for index, plan in enumerate(plans):
            await self._call(index, plan, total)

    def _result(self, plan: CallPlan, call: int, utt: Utterance, **kw: Any) -> TurnResult:
        index = len(self.turns)
        return TurnResult(
            variant=self._variant,
            index=index,
            call=call,
            conversation=plan.conversation,
            repeat=plan.repeat,
            turn_id=utt.spec.id,
            source=utt.spec.source,
            expected=utt.spec.text,
            audio_sha256=utt.audio_sha256,
            speech_s=round(utt.voiced_s, 3),
            warmup=index < self._config.warmup_turns,
            **kw,
        )

    async def _call(self, index: int, plan: CallPlan, total: int) -> None:
        config = self._config
        caller = LoopbackCaller(self._base_url)
        started = time.monotonic()
        try:
            await caller.connect(timeout=config.connect_timeout_s)
        except (TimeoutError, ConnectionError, OSError, httpx.HTTPError) as error:
            message = f"connect failed: {type(error).__name__}: {error}"
            self.calls.append(CallRecord(index, plan.conversation, None, None, message))
            for utt in plan.turns:
                self.turns.append(self._result(plan, index, utt, ok=False, error=message))
                self._report(self.turns[-1], total)
            return
        try:
            connected = time.monotonic()
            greeting_ms: float | None = None
            try:
                voice = await caller.wait_for_voice(started, timeout=config.greeting_timeout_s)
                greeting_ms = (voice - connected) * 1000.0
                await _wait_answer_end(caller, voice, config, llm_since=None)
            except TimeoutError:
                pass  # no greeting, or a long one: the turns still run
            self.calls.append(
                CallRecord(index, plan.conversation, connected - started, greeting_ms, None)
            )
            for utt in plan.turns:
                self.turns.append(await self._turn(caller, plan, index, utt))
                self._report(self.turns[-1], total)
        finally:
            await caller.close()

    async def _turn(
        self, caller: LoopbackCaller, plan: CallPlan, call: int, utt: Utterance
    ) -> TurnResult:
        config = self._config
        since = time.monotonic()
        try:
            sent_end = await caller.say(utt.samples, utt.sample_rate)
        except (TimeoutError, MediaStreamError, RuntimeError) as exc:
            return self._result(plan, call, utt, ok=False, error=f"could not speak: {exc}")
        speech_end = sent_end - utt.unvoiced_tail_s
        error: str | None = None
        first_voice: float | None = None
        answer_end: float | None = None
        try:
            first_voice = await caller.wait_for_voice(speech_end, config.answer_timeout_s)
            answer_end = await _wait_answer_end(caller, first_voice, config, llm_since=since)
        except TimeoutError as exc:
            error = (
                f"no answer within {config.answer_timeout_s:.0f} s"
                if first_voice is None
                else str(exc)
            )
            if first_voice is None:
                # Let a late answer play out so it does not land in the next turn.
                with contextlib.suppress(TimeoutError):
                    await caller.wait_for_silence(config.bot_quiet_s, 30.0, after=speech_end)
        chosen, count = pick_latency(caller.messages, since, first_voice)
        if chosen is None and first_voice is not None:
            with contextlib.suppress(TimeoutError):
                await caller.wait_for_message(
                    "latency", timeout=config.latency_message_wait_s, after=since
                )
            chosen, count = pick_latency(caller.messages, since, first_voice)
        data = None if chosen is None else chosen.data.get("data")
        latency = data if isinstance(data, dict) else None
        message_to_voice = None
        if chosen is not None and first_voice is not None:
            message_to_voice = (first_voice - chosen.received_at) * 1000.0
            # Same machine, same wall clock: the server's own "bot started speaking" time
            # splits the transport exactly (the message's arrival is only an estimate).
            bot_started = chosen.data.get("data", {}).get("bot_started_unix")
            if isinstance(bot_started, int | float):
                first_voice_unix = first_voice + (time.time() - time.monotonic())
                message_to_voice = (first_voice_unix - bot_started) * 1000.0
        messages = caller.messages
        transcript = _texts(messages, since, "user-transcription")
        if (
            transcript is None
            and latency is not None
            and isinstance(latency.get("transcript"), str)
        ):
            transcript = latency["transcript"]
        v2v = None if first_voice is None else (first_voice - speech_end) * 1000.0
        errors = server_errors(messages, since)
        failing = [e for e in errors if e.split(":", 1)[0] in FAILING_STAGES]
        if failing and error is None:
            error = f"the bot apologised: {failing[0]}"
        probability, complete, fallback = smart_turn_fields(latency)
        result = self._result(
            plan,
            call,
            utt,
            ok=first_voice is not None and not failing,
            error=error,
            server_errors=errors,
            transcript=transcript,
            answer=_texts(messages, since, "bot-tts-text"),
            server_turns=count,
            smart_turn_probability=probability,
            smart_turn_complete=complete,
            fallback=fallback,
            answer_duration_s=None
            if answer_end is None or first_voice is None
            else round(answer_end - first_voice, 3),
            longest_pause_s=None
            if answer_end is None or first_voice is None
            else round(caller.recorder.longest_quiet(first_voice, answer_end), 3),
            stages=derive_stages(v2v, latency, message_to_voice),
            latency=latency,
        )
        # A person leaves a pause; the microphone's silence also ends the stock pipeline's turn.
        quiet = config.min_trailing_silence_s - (time.monotonic() - speech_end)
        await asyncio.sleep(max(config.pause_between_turns_s, quiet))
        return result

    def _report(self, turn: TurnResult, total: int) -> None:
        tag = " (warm-up)" if turn.warmup else ""
        if turn.ok and turn.voice_to_voice_ms is not None:
            server = turn.stages.server_total
            detail = f"server {server:.0f} ms" if server is not None else "no server figures"
            line = f"voice-to-voice {turn.voice_to_voice_ms:.0f} ms, {detail}"
        else:
            line = f"FAILED: {turn.error}"
        self._progress(
            f"[{self._variant}] turn {turn.index + 1}/{total} {turn.turn_id}{tag}: {line}"
        )

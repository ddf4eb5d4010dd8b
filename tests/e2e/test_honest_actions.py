"""The bot does not claim an action it did not take: the real agent (cpu profile, no Home
Assistant configured, the real 0.5B model behind it) is asked, by the recorded voice, to "Turn on
the living room lamp." Before pipeline.conversation.device_requests it answered "Sure! I can turn on
the living room light." Now it says it cannot control devices and how to connect Home Assistant.

What the bot said is read twice: the text it spoke, from the data channel (RTVI bot-output /
bot-tts-text), and the audio it sent, through Whisper.
"""

from __future__ import annotations

import re
import time

import pytest

from pipeline.bench.client.loopback_caller import LoopbackCaller
from pipeline.ops.agent_process import AgentProcess
from pipeline.webrtc.ice_policy import loopback_only_ice
from pipeline.webrtc.signalling import ServerMessage
from tests.support.conversation import ask, fixture_clip, hear, wait_out_greeting

# What an answer claiming the action sounds like: an agreement, a promise, or a report that
# the device was switched (the 0.5B model's answers, measured: README).
_VERBS = r"(?:turn|switch|lock|unlock|open|close|dim)"
CLAIMS = re.compile(
    r"^\W*(?:sure|okay|ok|of course|certainly|absolutely|done|alright|all right)\b"
    rf"|\bi (?:can|will|'ll|have|'ve|am|'m|just) (?:now |help )?{_VERBS}"
    r"|\b(?:turned|turning|switched|switching) (?:it |them )?(?:on|off)\b"
    r"|\b(?:is|are|has been|have been) (?:now )?(?:turned |switched )?"
    r"(?:on|off|locked|unlocked|open|closed)\b",
    re.IGNORECASE,
)


def claims_the_action(text: str) -> bool:
    """Whether ``text`` says the device was (or is being, or can be) switched."""
    return CLAIMS.search(text.replace("’", "'")) is not None


def test_the_claims_pattern_catches_the_answer_the_model_gave() -> None:
    assert claims_the_action("Sure! I can turn on the living room light.")
    assert claims_the_action("I've turned on the living room lamp for you.")
    assert claims_the_action("The living room lamp is now on.")
    assert claims_the_action("The kitchen lights have been switched off.")
    assert claims_the_action("The front door is locked.")
    assert claims_the_action("Liam turned on the living room.")
    assert not claims_the_action("Sorry, I can't control devices in your home.")


def _bot_text(messages: list[ServerMessage]) -> str:
    """What the bot spoke, by its data-channel messages: each bot-output segment's longest text
    (a segment is reported more than once), or the bot-tts-text pieces if there is none."""
    segments: dict[object, str] = {}
    for message in messages:
        data = message.data.get("data", {})
        if message.type == "bot-output" and isinstance(data.get("text"), str):
            key = data.get("segment_id", len(segments))
            if len(data["text"]) >= len(segments.get(key, "")):
                segments[key] = data["text"]
    pieces = list(segments.values()) or [
        str(m.data.get("data", {}).get("text", "")) for m in messages if m.type == "bot-tts-text"
    ]
    return " ".join(" ".join(pieces).split())


@pytest.mark.asyncio
@pytest.mark.timeout(240)
async def test_the_lamp_without_a_device_tool_is_not_claimed_turned_on(
    agent: AgentProcess,
) -> None:
    lamp, rate = fixture_clip("turn_on_the_living_room_lamp.wav")
    with loopback_only_ice():
        async with LoopbackCaller(agent.base_url) as caller:
            await wait_out_greeting(caller, time.monotonic())
            before = len(caller.messages)
            reply = await ask(caller, lamp, rate, quiet_s=2.0)
            messages = caller.messages[before:]
    heard_by_agent = " ".join(
        m.data.get("data", {}).get("text", "") for m in messages if m.type == "user-transcription"
    ).lower()
    said = _bot_text(messages)
    spoken = await hear(reply.audio, reply.rate)
    print(f"user: {heard_by_agent!r}\nbot said: {said!r}\nbot audio heard as: {spoken!r}")
    assert "living room" in heard_by_agent, heard_by_agent
    assert said, f"no bot text on the data channel: {[m.type for m in messages]}"
    assert not claims_the_action(said), said
    assert not claims_the_action(spoken), spoken
    assert "can't control devices" in said.lower() and "home assistant" in said.lower(), said
    assert "control" in spoken.lower(), spoken

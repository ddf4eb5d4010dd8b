"""Requests to control a device, answered honestly when no device tool is configured.

Without Home Assistant (the only tool that acts on devices, pipeline.tools.home_assistant) the
bot cannot switch anything, but the cpu profile's 0.5B model answers "Turn on the living room
light." with "Sure! I can turn on the living room light.", and then nothing happens. Told in the
system prompt that it has no devices, it still says so most of the time (measured: README). So
this processor, between the user aggregator and the LLM, recognises such a request in the
user's turn and answers it with a fixed sentence (``ToolsConfig.no_device_tool_answer``: that
nothing was changed, and how to connect Home Assistant) instead of asking the LLM. The sentence
goes into the context like any answer, so the model sees what it said.

Recognition is by rules over the transcript, not by the model: an action on a device or a room
("turn on the living room lamp", "switch the fan off", "lock the front door", "dim the lights")
or a question about a device's state ("are the lights on?"). Timers, alarms and reminders are
the bot's own tools, and "how do I..." questions ask for knowledge, so neither counts. Only the
session built without the Home Assistant tool has this processor: with the tool, the model calls
it and the answer is what Home Assistant replied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from loguru import logger
from pipecat.frames.frames import Frame, LLMContextFrame, TTSSpeakFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

_ROOMS = (
    r"living ?room|lounge|kitchen|bed ?room|bath ?room|hall|hallway|office|study|"
    r"dining ?room|garage|garden|porch|patio|basement|cellar|attic|nursery|den|"
    r"upstairs|downstairs|front ?yard|back ?yard"
)
_DEVICES = (
    r"lights?|lamps?|bulbs?|lighting|fans?|heaters?|heating|heat|thermostat|boiler|"
    r"air ?conditioning|air ?conditioner|ac|aircon|tv|television|telly|radio|"
    r"plugs?|sockets?|outlets?|switch(?:es)?|doors?|locks?|deadbolt|gates?|"
    r"blinds|curtains|shades|shutters|windows?|vacuum|hoover|roomba|dishwasher|"
    r"washing ?machine|washer|dryer|oven|stove|kettle|coffee ?(?:machine|maker)|"
    r"sprinklers?|cameras?|humidifier|dehumidifier|purifier|devices?"
)
_DEVICE = re.compile(rf"\b(?:{_DEVICES})\b")
_PLACE = re.compile(rf"\b(?:{_ROOMS})\b")
# "turn on the lamp", "switch the kitchen lights off", "power down the heater".
_ON_OFF = re.compile(r"\b(?:turn|switch|flip|shut|power|put)\b(?:\s+\S+){0,6}?\s+(?:on|off)\b")
# Verbs that act on a device named in the same request.
_ACT = re.compile(
    r"\b(?:turn (?:up|down)|crank (?:up|down)|dim|brighten|lock|unlock|open|close|shut|start|"
    r"stop|set|raise|lower|activate|deactivate|arm|disarm|toggle|run)\b"
)
# "are the lights on?", "is the front door locked?"
_STATE_QUESTION = re.compile(
    r"^(?:(?:is|are) (?:the|my|our|all|any)|did i leave)\b.*"
    r"\b(?:on|off|locked|unlocked|open|closed|running)\b"
)
# The bot's own tools, and questions asking how something is done rather than to do it.
_NOT_DEVICE_CONTROL = re.compile(
    r"\b(?:timers?|alarms?|reminders?|remind)\b|\bhow (?:do|can|should|would|to)\b|^(?:why|what)\b"
)


def normalise(text: str) -> str:
    """Lower case words separated by single spaces, punctuation removed."""
    return " ".join(re.sub(r"[^a-z0-9']+", " ", text.lower()).split())


def is_device_request(text: str) -> bool:
    """Whether ``text`` asks to control a home device, or about one's state."""
    words = normalise(text)
    if not words or _NOT_DEVICE_CONTROL.search(words):
        return False
    device = _DEVICE.search(words) is not None
    if _ON_OFF.search(words) and (device or _PLACE.search(words)):
        return True
    if _ACT.search(words) and device:
        return True
    return bool(_STATE_QUESTION.search(words)) and device


def last_user_text(messages: Sequence[Any]) -> str:
    """The text of the context's last message when it is the user's (else "")."""
    if not messages:
        return ""
    message = messages[-1]
    if not isinstance(message, dict) or message.get("role") != "user":
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


class DeviceRequestGuard(FrameProcessor):
    """Answers a device request with ``answer`` instead of running the LLM; passes the rest.

    Place it between the user aggregator and the LLM, in a session with no device tool. A
    speculative context (a turn not ended yet) passes untouched: it is not an answer yet.
    """

    def __init__(self, answer: str, *, session_id: str = "") -> None:
        super().__init__()
        self._answer = answer
        self._session_id = session_id
        self.answered = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Hold back the LLM's run for a device request and speak the answer instead."""
        await super().process_frame(frame, direction)
        if (
            isinstance(frame, LLMContextFrame)
            and direction == FrameDirection.DOWNSTREAM
            and not frame.speculation
            and is_device_request(last_user_text(frame.context.get_messages()))
        ):
            self.answered += 1
            logger.info(f"[{self._session_id}] device request with no device tool: not run")
            await self.push_frame(TTSSpeakFrame(self._answer), direction)
            return
        await self.push_frame(frame, direction)

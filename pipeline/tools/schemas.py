"""What the model is told about the tools: their function schemas, in a fixed order.

The schemas go in each request's ``tools``, never in the system prompt. Built the same way for
every session and the warm-up, they render to the same prompt prefix, which the LLM server
keeps cached. Descriptions are short (every word is prefill) and free of sample values that a
small model would copy into its arguments.
"""

from __future__ import annotations

from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.adapters.llm.services.open_ai_adapter import OpenAILLMAdapter

from pipeline.config import ToolsConfig

_NO_PARAMETERS: dict[str, Any] = {}

CLOCK = FunctionSchema(
    name="get_current_time",
    description="Get the current local time and date.",
    properties=_NO_PARAMETERS,
    required=[],
)
CALCULATOR = FunctionSchema(
    name="calculate",
    description="Calculate an arithmetic expression, e.g. 17 * 23 or (4 + 6) / 3.",
    properties={"expression": {"type": "string", "description": "The expression."}},
    required=["expression"],
)
UNITS = FunctionSchema(
    name="convert_units",
    description="Convert a quantity between units of length, weight, volume, temperature, "
    "speed or time, e.g. 5 miles to kilometers.",
    properties={
        "value": {"type": "number"},
        "from_unit": {"type": "string"},
        "to_unit": {"type": "string"},
    },
    required=["value", "from_unit", "to_unit"],
)
SET_TIMER = FunctionSchema(
    name="set_timer",
    description="Start a timer; the user is told when it ends.",
    properties={
        # A phrase, not numbers: small models put "10 minutes" into an "hours" field.
        "duration": {"type": "string", "description": "How long, e.g. 10 minutes."},
        "label": {"type": "string", "description": "A name for the timer, if the user gave one."},
    },
    required=["duration"],
)
SET_REMINDER = FunctionSchema(
    name="set_reminder",
    description="Remind the user of something after a while.",
    properties={
        "duration": {"type": "string", "description": "How long from now, e.g. 20 minutes."},
        "reminder": {"type": "string", "description": "What to remind the user of."},
    },
    required=["duration", "reminder"],
)
CANCEL_TIMER = FunctionSchema(
    name="cancel_timer",
    description="Cancel timers and reminders: the one with this label, or all of them.",
    properties={"label": {"type": "string"}},
    required=[],
)
LIST_TIMERS = FunctionSchema(
    name="list_timers",
    description="List the running timers and reminders with the time left.",
    properties=_NO_PARAMETERS,
    required=[],
)
HOME_ASSISTANT = FunctionSchema(
    name="home_assistant",
    description="Control or ask about smart home devices, e.g. turn on the living room lamp, "
    "or is the front door locked.",
    properties={"command": {"type": "string", "description": "The request, in plain words."}},
    required=["command"],
)


def tool_schemas(config: ToolsConfig) -> list[FunctionSchema]:
    """The schemas of the configured tools, always in the same order."""
    enabled = set(config.enabled)
    schemas: list[FunctionSchema] = []
    if "clock" in enabled:
        schemas.append(CLOCK)
    if "calculator" in enabled:
        schemas.append(CALCULATOR)
    if "units" in enabled:
        schemas.append(UNITS)
    if "timers" in enabled:
        schemas += [SET_TIMER, SET_REMINDER, CANCEL_TIMER, LIST_TIMERS]
    if config.home_assistant:
        schemas.append(HOME_ASSISTANT)
    return schemas


def openai_tools(config: ToolsConfig) -> list[dict[str, Any]]:
    """The ``tools`` of a chat-completion request, exactly as the sessions' LLM client sends
    them (the warm-up sends the same, so the server caches the prompt prefix they render to)."""
    schemas = tool_schemas(config)
    if not schemas:
        return []
    formatted = OpenAILLMAdapter().to_provider_tools_format(ToolsSchema(standard_tools=schemas))
    return [dict(tool) for tool in formatted]

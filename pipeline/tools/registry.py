"""The configured tools as pipecat function calls, for one session.

Each call is bounded: past ``ToolsConfig.timeout_secs`` it is cancelled, the bot says a short
apology and the LLM is not run again. A call still running after half a second gets a short
working phrase ("One moment.", pre-rendered by the TTS engine). Each tool's result carries a
sentence that answers the question, which is spoken directly when the model cannot be trusted
to (``speak_results``, or a call repeated within one turn). Timers live as long as the session:
the LLM service's teardown cancels them. The schemas the model sees are in
:mod:`pipeline.tools.schemas`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import FunctionCallResultProperties, TTSSpeakFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.llm_service import FunctionCallParams, LLMService

from pipeline.config import ToolsConfig
from pipeline.tools.arithmetic import ExpressionError, evaluate, format_number
from pipeline.tools.clock import Clock, describe, local_now
from pipeline.tools.home_assistant import HomeAssistant, HomeAssistantError
from pipeline.tools.schemas import (
    CALCULATOR,
    CANCEL_TIMER,
    CLOCK,
    HOME_ASSISTANT,
    LIST_TIMERS,
    SET_REMINDER,
    SET_TIMER,
    UNITS,
    tool_schemas,
)
from pipeline.tools.timers import SessionTimers, TimerError, describe_duration, parse_duration
from pipeline.tools.units import UnitError, convert, find_conversion, spoken_name
from services.seams.pipecat_seams import set_handler_cleanup

# What a tool may raise to give the model a reason instead of a result.
TOOL_ERRORS = (ExpressionError, UnitError, TimerError, HomeAssistantError, ValueError)
# pipecat's own deadline, a backstop behind ours: it runs the LLM again instead of apologising.
_BACKSTOP_SECS = 2.0
# Calls made together get one working phrase.
_PHRASE_INTERVAL_SECS = 5.0

Run = Callable[[Mapping[str, Any], FunctionCallParams], Coroutine[Any, Any, dict[str, Any]]]


@dataclass(frozen=True)
class Tool:
    """One callable tool: its schema and what runs it."""

    schema: FunctionSchema
    run: Run


def _text(arguments: Mapping[str, Any], key: str) -> str:
    value = arguments.get(key)
    return value.strip() if isinstance(value, str) else ""


def _number(arguments: Mapping[str, Any], key: str) -> float:
    """A numeric argument; small models sometimes send numbers as strings."""
    value = arguments.get(key)
    if isinstance(value, bool) or value is None or value == "":
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError as error:
        raise ValueError(f"{key} must be a number, not {value!r}") from error


class SessionTools:
    """The tools of one session, their state (timers) and their pipecat handlers."""

    def __init__(
        self,
        config: ToolsConfig,
        *,
        session_id: str = "",
        clock: Clock = local_now,
        home_assistant: HomeAssistant | None = None,
    ) -> None:
        self.config = config
        self._session_id = session_id
        self._clock = clock
        self.timers = SessionTimers(
            max_timers=config.max_timers, max_secs=config.max_timer_secs, session_id=session_id
        )
        if home_assistant is None and config.home_assistant:
            assert config.home_assistant_url is not None
            assert config.home_assistant_token is not None
            # The call's deadline governs; the client's own timeout is only a backstop.
            home_assistant = HomeAssistant(
                config.home_assistant_url,
                config.home_assistant_token,
                timeout_secs=config.timeout_secs + 1.0,
            )
        self._home_assistant = home_assistant
        runs: dict[str, Run] = {
            CLOCK.name: self._get_current_time,
            CALCULATOR.name: self._calculate,
            UNITS.name: self._convert_units,
            SET_TIMER.name: self._set_timer,
            SET_REMINDER.name: self._set_timer,
            CANCEL_TIMER.name: self._cancel_timer,
            LIST_TIMERS.name: self._list_timers,
            HOME_ASSISTANT.name: self._home_assistant_command,
        }
        self.tools = [Tool(schema, runs[schema.name]) for schema in tool_schemas(config)]
        self.calls: dict[str, int] = {}
        self.timeouts = 0
        self.repeats = 0
        self._phrase_said_at = -1e9

    @property
    def schema(self) -> ToolsSchema:
        """The tools for the LLM context."""
        return ToolsSchema(standard_tools=[tool.schema for tool in self.tools])

    def install(self, llm: LLMService[Any], context: LLMContext) -> None:
        """Offer the tools in ``context`` and register their handlers on ``llm``."""
        if not self.tools:
            return
        context.set_tools(self.schema)
        for tool in self.tools:
            llm.register_function(
                tool.schema.name,
                self._handler(tool),
                timeout_secs=self.config.timeout_secs + _BACKSTOP_SECS,
            )

    def _handler(self, tool: Tool) -> Callable[[FunctionCallParams], Awaitable[None]]:
        async def handler(params: FunctionCallParams) -> None:
            await self.call(tool, params)

        # pipecat closes the handlers' resource when the LLM service is torn down (the session
        # ended): the timers go with it. Shared by every handler, run once.
        set_handler_cleanup(handler, self.close)
        return handler

    async def call(self, tool: Tool, params: FunctionCallParams) -> None:
        """Run one call within the timeout and hand its result (or error) back.

        A call still running after ``working_phrase_after_secs`` gets the working phrase; one
        past the timeout is cancelled and answered with the spoken apology, without asking the
        LLM again (a model asked to explain a hung tool tends to promise it is done). With
        ``speak_results``, and for a call the model repeats within one turn, the tool's own
        sentence is the answer.
        """
        name = tool.schema.name
        earlier = self._earlier_result(params)
        if earlier is not None:
            # The model called again what it already has the answer to: say that answer.
            self.repeats += 1
            logger.info(f"[{self._session_id}] {name} called again in one turn; answering")
            await self._finish(params, earlier, spoken=True)
            return
        self.calls[name] = self.calls.get(name, 0) + 1
        started = time.perf_counter()
        try:
            result = await self._run(tool, params)
        except TimeoutError:
            self.timeouts += 1
            logger.warning(
                f"[{self._session_id}] tool {name} timed out after {self.config.timeout_secs:g} s"
            )
            await params.llm.push_frame(TTSSpeakFrame(self.config.timeout_apology))
            await params.result_callback(
                {"error": f"{name} did not finish in time and was cancelled"},
                properties=FunctionCallResultProperties(run_llm=False),
            )
            return
        except TOOL_ERRORS as error:
            logger.info(f"[{self._session_id}] tool {name}: {error!r} (cause {error.__cause__!r})")
            result = {"error": str(error)}
        except Exception as error:  # noqa: BLE001 - a tool's bug must not end the turn silently
            logger.opt(exception=error).error(f"[{self._session_id}] tool {name} failed")
            result = {"error": f"{name} failed"}
        elapsed = (time.perf_counter() - started) * 1000
        logger.info(f"[{self._session_id}] tool {name} answered in {elapsed:.0f} ms")
        await self._finish(params, result, spoken=self.config.speak_results)

    async def _run(self, tool: Tool, params: FunctionCallParams) -> dict[str, Any]:
        """The tool's result; the working phrase if it is slow; TimeoutError past the timeout."""
        config = self.config
        task = asyncio.create_task(
            tool.run(params.arguments, params), name=f"tool-{tool.schema.name}"
        )
        try:
            wait = min(config.working_phrase_after_secs, config.timeout_secs)
            done, _pending = await asyncio.wait({task}, timeout=wait)
            if not done and wait < config.timeout_secs:
                await self._say_working_phrase(params)
            return await asyncio.wait_for(task, max(0.0, config.timeout_secs - wait))
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _say_working_phrase(self, params: FunctionCallParams) -> None:
        # Once for calls made together, not once per call.
        now = time.monotonic()
        if not self.config.working_phrase or now - self._phrase_said_at < _PHRASE_INTERVAL_SECS:
            return
        self._phrase_said_at = now
        phrase = TTSSpeakFrame(self.config.working_phrase, append_to_context=False)
        await params.llm.push_frame(phrase)

    async def _finish(
        self, params: FunctionCallParams, result: dict[str, Any], *, spoken: bool
    ) -> None:
        """Hand the result to the context; when ``spoken``, say its sentence as the answer
        instead of asking the LLM for one."""
        if not spoken:
            await params.result_callback(result)
            return
        await params.llm.push_frame(TTSSpeakFrame(spoken_answer(result)))
        await params.result_callback(result, properties=FunctionCallResultProperties(run_llm=False))

    def _earlier_result(self, params: FunctionCallParams) -> dict[str, Any] | None:
        """The result of this same call made earlier in the current turn, if any (or an error
        result once the turn made ``max_calls_per_turn`` calls)."""
        turn = _current_turn(params.context.get_messages())
        results = {
            str(m.get("tool_call_id")): m.get("content")
            for m in turn
            if m.get("role") == "tool" and m.get("content") not in (None, "IN_PROGRESS")
        }
        if len(results) >= self.config.max_calls_per_turn:
            return {"error": "too many tool calls for one question"}
        for message in turn:
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                if function.get("name") != params.function_name:
                    continue
                if _arguments(function.get("arguments")) != dict(params.arguments):
                    continue
                content = results.get(str(call.get("id")))
                if isinstance(content, str):
                    try:
                        earlier = json.loads(content)
                    except ValueError:
                        continue
                    if isinstance(earlier, dict):
                        return earlier
        return None

    async def close(self) -> None:
        """Cancel the session's timers. Idempotent."""
        await self.timers.close()

    # The tools. Each returns a small dict: the data, and an "answer" sentence to speak.

    async def _get_current_time(
        self, _arguments: Mapping[str, Any], _params: FunctionCallParams
    ) -> dict[str, Any]:
        now = describe(self._clock())
        return {**now, "answer": f"It is {now['time']} on {now['date']}."}

    async def _calculate(
        self, arguments: Mapping[str, Any], params: FunctionCallParams
    ) -> dict[str, Any]:
        expression = _text(arguments, "expression")
        try:
            result = format_number(evaluate(expression))
        except ExpressionError:
            # Small models send conversions here too ("5 miles * 1.609 kilometers per mile",
            # sometimes with from_unit and to_unit beside it).
            words = f"{expression} {_text(arguments, 'from_unit')} {_text(arguments, 'to_unit')}"
            found = find_conversion(words)
            if found is None:
                raise
            value, source, target = found
            conversion = {"value": value, "from_unit": source, "to_unit": target}
            return await self._convert_units(conversion, params)
        return {"expression": expression, "result": result, "answer": f"The answer is {result}."}

    async def _convert_units(
        self, arguments: Mapping[str, Any], _params: FunctionCallParams
    ) -> dict[str, Any]:
        value = _number(arguments, "value")
        done = convert(value, _text(arguments, "from_unit"), _text(arguments, "to_unit"))
        result = format_number(done.result)
        source = spoken_name(done.from_unit, value)
        target = spoken_name(done.to_unit, done.result)
        return {
            "result": result,
            "answer": f"{format_number(value)} {source} is {result} {target}.",
        }

    async def _set_timer(
        self, arguments: Mapping[str, Any], params: FunctionCallParams
    ) -> dict[str, Any]:
        seconds = _duration(arguments)
        worker = params.pipeline_worker

        async def say(text: str) -> None:
            await worker.queue_frames([TTSSpeakFrame(text)])

        timer = self.timers.start(
            seconds,
            say,
            label=_text(arguments, "label") or None,
            # Only a reminder speaks a message: small models fill in fields nobody asked for.
            message=(_text(arguments, "reminder") or None)
            if params.function_name == SET_REMINDER.name
            else None,
        )
        duration = describe_duration(seconds)
        ends = describe(self._clock() + timedelta(seconds=seconds))["time"]
        if timer.message:
            answer = f"OK, I will remind you in {duration}."
        else:
            answer = f"OK, a timer for {duration}, until {ends}."
        kind = "reminder" if timer.message else "timer"
        return {"set": f"{kind} for {duration}", "ends_at": ends, "answer": answer}

    async def _cancel_timer(
        self, arguments: Mapping[str, Any], _params: FunctionCallParams
    ) -> dict[str, Any]:
        cancelled = await self.timers.cancel(_text(arguments, "label") or None)
        count = len(cancelled)
        answer = (
            f"Cancelled {count} timer{'' if count == 1 else 's'}."
            if count
            else "There was no timer to cancel."
        )
        return {"cancelled": count, "still_running": len(self.timers.pending()), "answer": answer}

    async def _list_timers(
        self, _arguments: Mapping[str, Any], _params: FunctionCallParams
    ) -> dict[str, Any]:
        now = time.monotonic()
        timers = [
            {
                "name": t.message or t.label or f"{describe_duration(t.seconds)} timer",
                "time_left": describe_duration(t.remaining(now)),
            }
            for t in self.timers.pending()
        ]
        parts = [f"{t['name']} with {t['time_left']} left" for t in timers]
        answer = ("Running: " + "; ".join(parts) + ".") if parts else "No timers are running."
        return {"timers": timers, "answer": answer}

    async def _home_assistant_command(
        self, arguments: Mapping[str, Any], _params: FunctionCallParams
    ) -> dict[str, Any]:
        if self._home_assistant is None:
            raise HomeAssistantError("Home Assistant is not configured")
        reply = await self._home_assistant.converse(_text(arguments, "command"))
        return {"reply": reply, "answer": reply}


def spoken_answer(result: Mapping[str, Any]) -> str:
    """What to say for a tool's result when the tool's sentence is the answer."""
    if "error" in result:
        return f"Sorry, I couldn't do that: {str(result['error']).rstrip('.')}."
    answer = result.get("answer")
    return str(answer) if answer else "Done."


def _current_turn(messages: Sequence[Any]) -> list[Mapping[str, Any]]:
    """The messages after the last user message (the current turn's calls and results)."""
    turn: list[Mapping[str, Any]] = []
    for message in reversed(messages):
        if not isinstance(message, Mapping):
            continue
        if message.get("role") == "user":
            break
        turn.append(message)
    return list(reversed(turn))


def _duration(arguments: Mapping[str, Any]) -> float:
    """A timer's seconds: its "duration" phrase (a bare number is minutes), or the hours,
    minutes and seconds fields a model may send instead."""
    duration = arguments.get("duration")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        return float(duration) * 60
    if isinstance(duration, str) and duration.strip():
        return parse_duration(duration)
    return (
        _number(arguments, "hours") * 3600
        + _number(arguments, "minutes") * 60
        + _number(arguments, "seconds")
    )


def _arguments(encoded: object) -> dict[str, Any] | None:
    if isinstance(encoded, dict):
        return encoded
    try:
        decoded = json.loads(str(encoded))
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def install_tools(
    llm: LLMService[Any], context: LLMContext, config: ToolsConfig, session_id: str
) -> SessionTools:
    """Give one session's LLM the configured tools (none when the config enables none)."""
    tools = SessionTools(config, session_id=session_id)
    tools.install(llm, context)
    return tools

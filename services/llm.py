"""The pipeline's LLM client: pipecat's OpenAI-compatible service, tuned for local servers.

One client class talks to llama.cpp's server, vLLM and any external OpenAI-compatible box.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

from loguru import logger
from openai import AsyncOpenAI, AsyncStream, DefaultAsyncHttpxClient, OpenAIError, Timeout
from openai.types.chat import ChatCompletionChunk
from pipecat.frames.frames import CancelFrame, EndFrame, Frame, LLMFullResponseEndFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.utils.errors import ErrorCategory
from pipecat.utils.types import assert_given, is_given

from pipeline.config import LLMConfig
from services.frames import LLMPrefillFrame
from services.llm_gate import LLMGate
from services.llm_server import LLMEndpoint
from services.seams.pipecat_seams import ResponseSlotLLMService
from services.text_tool_calls import TextToolCallStream

# Metadata of an ``LLMFullResponseEndFrame``: whether its request ran to the end of its stream
# (False when an interruption cancelled it, or it failed with an error of its own).
RESPONSE_COMPLETE = "jetvoice.response_complete"


class LocalLLMService(ResponseSlotLLMService):
    """OpenAI-compatible streaming client for the local LLM server.

    Qwen chat templates silently drop ``developer`` messages, so pipecat converts them to
    ``user`` messages for this service.
    """

    supports_developer_role = False

    def __init__(
        self, *, request_timeout_secs: float, gate: LLMGate | None = None, **kwargs: Any
    ) -> None:
        self._request_timeout_secs = request_timeout_secs
        # Shared by every session of the agent (services.llm_gate); None: no queue.
        self._gate = gate or LLMGate(None, 0.0)
        super().__init__(**kwargs)
        self._response_complete = False
        self._prefill_task: asyncio.Task[None] | None = None
        self.prefills = 0
        self.prefills_skipped = 0

    def prefill(self, context: LLMContext, text: str) -> None:
        """Have the server read the prompt of a turn not ended yet, in the background.

        ``text`` is the user's words as the turn's transcript will carry them (the STT's early
        transcript, ``services.early_transcript``): the request the turn then makes starts with
        the same tokens, so the server finds them all in its prefix cache, and the first token
        costs one step instead of the whole new turn's prompt. A prefill that turns out wrong
        (the user went on) only cost the server's idle time. One at a time, and only to a
        server with nothing else to do (services.llm_gate). Asked for by an
        :class:`LLMPrefillFrame`; the request runs as a task of pipecat's task manager.
        """
        if self._prefill_task is not None and not self._prefill_task.done():
            return
        messages = [*context.get_messages(), {"role": "user", "content": text}]
        ahead = LLMContext(messages=cast(Any, messages), tools=context.tools)
        self._prefill_task = self.create_task(self._prefill(ahead), "llm-prefill")
        self.prefills += 1

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """pipecat's handling; an :class:`LLMPrefillFrame` starts a prefill and goes no further."""
        if isinstance(frame, LLMPrefillFrame):
            if frame.context is not None and frame.text:
                self.prefill(frame.context, frame.text)
            return
        await super().process_frame(frame, direction)

    async def _prefill(self, context: LLMContext) -> None:
        invocation = await self.get_llm_invocation_params_for(context)
        params = self.build_chat_completion_params(invocation)
        # The same prompt as the turn's request; one token, nothing streamed.
        params.update(stream=False, max_tokens=1)
        params.pop("stream_options", None)
        async with self._gate.if_idle() as idle:
            if not idle:
                self.prefills_skipped += 1
                return
            try:
                await asyncio.wait_for(
                    self.client.chat.completions.create(**params), self._request_timeout_secs
                )
            except (OpenAIError, TimeoutError) as error:
                logger.debug(f"{self}: prefill failed: {error!r}")

    async def get_llm_invocation_params_for(self, context: LLMContext) -> Any:
        """The messages/tools part of a request for ``context``, as the base class builds it."""
        return await self.get_llm_adapter().get_llm_invocation_params(
            context,
            system_instruction=assert_given(cast(Any, self.settings).system_instruction),
            convert_developer_to_user=not self.supports_developer_role,
        )

    async def stop(self, frame: EndFrame) -> None:
        """Stop; a prefill still waiting on the server is not wanted."""
        await self._drop_prefill()
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame) -> None:
        """Stop at once, prefill included."""
        await self._drop_prefill()
        await super().cancel(frame)

    async def _drop_prefill(self) -> None:
        task, self._prefill_task = self._prefill_task, None
        if task is not None and not task.done():
            await self.cancel_task(task)

    @contextlib.asynccontextmanager
    async def response_slot(self) -> AsyncIterator[None]:
        """Each response waits in line for the server first (services.llm_gate), so that the
        request's own timeout then bounds only its work; a response that ran its whole stream
        is marked complete."""
        self._response_complete = False
        async with self._gate.turn():
            yield
        self._response_complete = True

    async def push_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        """Mark each response's end with whether its stream ran to completion."""
        if isinstance(frame, LLMFullResponseEndFrame):
            # An interruption can overtake the start of the response it cancels, so the
            # frames downstream cannot tell a cancelled response from an empty one.
            frame.metadata[RESPONSE_COMPLETE] = self._response_complete
        await super().push_frame(frame, direction)

    def classify_error(self, exception: Exception) -> ErrorCategory | None:
        """Every failure of a local server is worth retrying on the next turn.

        pipecat would mark the service unusable for the rest of the session on a 4xx answer;
        a local server that is restarting or misbehaving for one request must not silence
        the whole conversation.
        """
        return ErrorCategory.SERVER

    async def get_chat_completions(self, context: LLMContext) -> AsyncStream[ChatCompletionChunk]:
        """The streamed answer; with tools offered, tool calls written as text become calls.

        llama.cpp's server sends a Qwen model's tool call as answer text (see
        services.text_tool_calls); vLLM's parser already sends real ``tool_calls``, which pass.
        """
        stream = await super().get_chat_completions(context)
        tools = context.tools
        if not is_given(tools) or not tools.standard_tools:
            return stream
        names = [tool.name for tool in tools.standard_tools]
        # Duck-typed: the base class only iterates the stream and closes it.
        return cast("AsyncStream[ChatCompletionChunk]", TextToolCallStream(stream, names))

    def create_client(
        self,
        api_key: Any = None,
        base_url: Any = None,
        organization: Any = None,
        project: Any = None,
        default_headers: Any = None,
        **kwargs: Any,
    ) -> AsyncOpenAI:
        """A client with a bounded timeout, no silent retries and no proxy from the environment.

        The stock client waits up to 10 minutes and retries twice; a voice turn needs an answer
        or a clear failure within seconds. ``trust_env=False`` keeps a proxy variable from
        routing loopback traffic off the machine.
        """
        timeout = Timeout(self._request_timeout_secs, connect=2.0)
        return AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout,
            http_client=DefaultAsyncHttpxClient(trust_env=False, timeout=timeout),
            default_headers=default_headers,
        )


def create_llm_service(
    config: LLMConfig, endpoint: LLMEndpoint, gate: LLMGate | None = None
) -> LocalLLMService:
    """Build a per-session LLM service pointed at ``endpoint``, in line at ``gate``."""
    settings = LocalLLMService.Settings(
        model=endpoint.model,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        system_instruction=config.system_prompt,
        # Qwen3 reasoning adds hundreds of tokens before the first speakable word.
        extra={"extra_body": {"chat_template_kwargs": {"enable_thinking": False}}},
    )
    return LocalLLMService(
        api_key=endpoint.api_key,
        base_url=endpoint.base_url,
        settings=settings,
        request_timeout_secs=config.request_timeout_secs,
        gate=gate,
    )

"""Fakes for calling a session's tools without a pipeline: the parameters pipecat passes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from pipecat.frames.frames import Frame, FunctionCallResultProperties
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import FunctionCallParams


class FakeLLM:
    """What a tool handler uses of the LLM service: pushing frames downstream."""

    def __init__(self) -> None:
        self.pushed: list[Frame] = []

    async def push_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        self.pushed.append(frame)


class FakeWorker:
    """What a timer uses of the pipeline worker: queueing frames."""

    def __init__(self) -> None:
        self.queued: list[Frame] = []
        self.got = asyncio.Event()

    async def queue_frames(self, frames: list[Frame]) -> None:
        self.queued.extend(frames)
        self.got.set()


class Call:
    """One function call's parameters and what came back through its callback."""

    def __init__(self, name: str, arguments: Mapping[str, Any]) -> None:
        self.llm = FakeLLM()
        self.worker = FakeWorker()
        self.results: list[tuple[Any, FunctionCallResultProperties | None]] = []
        self.params = FunctionCallParams(
            function_name=name,
            tool_call_id="call_1",
            arguments=arguments,
            llm=cast(Any, self.llm),
            pipeline_worker=cast(Any, self.worker),
            context=LLMContext(),
            result_callback=self._callback,
        )

    async def _callback(
        self, result: Any, *, properties: FunctionCallResultProperties | None = None
    ) -> None:
        self.results.append((result, properties))

    @property
    def result(self) -> Any:
        assert len(self.results) == 1, self.results
        return self.results[0][0]

"""The tool path with the real small model: the cpu profile's qwen2.5-coder-0.5b on the managed
llama.cpp server, the real LLM client and pipecat's tool loop.

llama-cpp-python renders the tools into the prompt through the model's own chat template; the
model answers with its call written as text, which the client turns into a tool call (see
services.text_tool_calls). The tool runs and, as the cpu profile does for this model
(``speak_results``), its own sentence is the answer: asked to word an answer from a tool's
result, this model calls the tool again or echoes the result as JSON. Greedy decoding keeps
the run repeatable.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from pipecat.frames.frames import Frame, LLMMessagesAppendFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext, LLMContextMessage
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from models.paths import profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.config import LLMConfig, ToolsConfig
from pipeline.conversation.empty_answer import EmptyAnswerGuard
from pipeline.tools.registry import install_tools
from pipeline.tools.schemas import openai_tools
from services.llm import create_llm_service
from services.llm_server import LLMEndpoint, free_loopback_port, llama_cpp_command

# The cpu profile's tool settings for this model.
TOOLS = ToolsConfig(speak_results=True)


@pytest.fixture(scope="module")
def llm_config() -> LLMConfig:
    """The cpu profile's LLM, greedy."""
    try:
        paths = profile_paths("cpu", ModelStore(default_models_dir()))
    except ModelUnavailableError as error:
        pytest.fail(f"cpu models missing (run `just setup`): {error}")
    return LLMConfig(
        server="llamacpp", model_path=paths.llm_path, temperature=0.0, request_timeout_secs=60
    )


@pytest.fixture(scope="module")
def endpoint(llm_config: LLMConfig) -> Iterator[LLMEndpoint]:
    """The llama.cpp server as the agent starts it, warmed up as the agent warms it (system
    prompt and tools in the prefix cache)."""
    port = free_loopback_port()
    process = subprocess.Popen(
        llama_cpp_command(llm_config, port),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        with httpx.Client(timeout=120, trust_env=False) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get(f"{url}/models", timeout=1).is_success:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the llama.cpp server did not start")
                time.sleep(0.25)
            warm = {
                "model": llm_config.model,
                "messages": [
                    {"role": "system", "content": llm_config.system_prompt},
                    {"role": "user", "content": "Hello."},
                ],
                "tools": openai_tools(TOOLS),
                "max_tokens": 1,
            }
            client.post(f"{url}/chat/completions", json=warm).raise_for_status()
        yield LLMEndpoint(url, llm_config.model, "local")
    finally:
        process.terminate()
        process.wait(10)


class SpokenText(FrameProcessor):
    """Records what the bot was asked to say (there is no TTS here)."""

    def __init__(self) -> None:
        super().__init__()
        self.said: list[str] = []
        self.spoke = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Note TTSSpeakFrames; pass everything on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSSpeakFrame):
            self.said.append(frame.text)
            self.spoke.set()
        await self.push_frame(frame, direction)


async def _ask(
    config: LLMConfig, endpoint: LLMEndpoint, question: str
) -> tuple[dict[str, int], list[str], float]:
    """One turn: the tools called, what the bot said, and the seconds until it said it."""
    llm = create_llm_service(config, endpoint)
    context = LLMContext()
    tools = install_tools(llm, context, TOOLS, "real")
    aggregators = LLMContextAggregatorPair(context)
    spoken = SpokenText()
    worker = PipelineWorker(
        Pipeline([llm, EmptyAnswerGuard(llm), spoken, aggregators.assistant()]),
        idle_timeout_secs=None,
    )
    runner = WorkerRunner(handle_sigint=False, handle_sigterm=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    user: LLMContextMessage = {"role": "user", "content": question}
    started = time.perf_counter()
    try:
        await worker.queue_frames([LLMMessagesAppendFrame(messages=[user], run_llm=True)])
        await asyncio.wait_for(spoken.spoke.wait(), 120)
        elapsed = time.perf_counter() - started
    finally:
        await worker.cancel()
        await running
    return tools.calls, spoken.said, elapsed


@pytest.mark.asyncio
@pytest.mark.timeout(400)
@pytest.mark.parametrize(
    ("question", "tools", "expected"),
    [
        ("What is 17 times 23?", ("calculate",), "391"),
        # This model picks the calculator for it (which then converts) as often as the converter.
        ("How many kilometers is 5 miles?", ("calculate", "convert_units"), "8.05"),
        ("What time is it?", ("get_current_time",), " on "),
        ("Set a timer for 10 minutes.", ("set_timer",), "10 minutes"),
    ],
)
async def test_the_small_model_calls_a_tool_and_its_answer_is_spoken(
    llm_config: LLMConfig,
    endpoint: LLMEndpoint,
    question: str,
    tools: tuple[str, ...],
    expected: str,
) -> None:
    calls, said, elapsed = await _ask(llm_config, endpoint, question)
    print(f"{question!r}: {calls} -> {said!r} in {elapsed:.1f} s")
    assert len(calls) == 1 and next(iter(calls)) in tools and sum(calls.values()) == 1
    assert len(said) == 1 and expected in said[0]

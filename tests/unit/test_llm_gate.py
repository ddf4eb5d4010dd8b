"""Turns line up for a server that serves one request at a time (services.llm_gate): a turn's
request leaves only when the server is free, a prefill never waits, and the line is bounded."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.config import LLMConfig
from services.llm_gate import LLMGate
from tests.unit.test_llm_prefill import _context, _prefill, _Recorder, _service


@pytest.mark.asyncio
async def test_turns_take_the_server_one_at_a_time_in_order() -> None:
    gate = LLMGate(1, queue_timeout_secs=5.0)
    order: list[str] = []

    async def turn(name: str, hold: float) -> None:
        async with gate.turn():
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    first = asyncio.create_task(turn("a", 0.2))
    await asyncio.sleep(0.05)
    await asyncio.gather(first, turn("b", 0.0))
    assert order == ["a in", "a out", "b in", "b out"]
    assert gate.waited == 1


@pytest.mark.asyncio
async def test_a_turn_stuck_in_line_gets_a_timeout_and_leaves_the_line() -> None:
    gate = LLMGate(1, queue_timeout_secs=0.2)
    async with gate.turn():
        with pytest.raises(TimeoutError):
            async with gate.turn():
                pytest.fail("entered while the server was taken")
    # The one that gave up holds nothing: the next turn gets in at once.
    async with asyncio.timeout(0.1), gate.turn():
        pass


@pytest.mark.asyncio
async def test_without_slots_nothing_waits() -> None:
    gate = LLMGate(None, queue_timeout_secs=0.0)
    async with gate.turn(), gate.turn(), gate.if_idle() as idle:
        assert idle
    assert gate.waited == 0


def test_only_llama_cpp_is_served_one_at_a_time() -> None:
    assert LLMConfig(server="llamacpp").parallel_requests == 1
    assert LLMConfig(server="vllm").parallel_requests is None
    assert LLMConfig(server="external", base_url="http://127.0.0.1:1/v1").parallel_requests is None


@pytest.mark.asyncio
async def test_a_prefill_is_not_sent_to_a_busy_server() -> None:
    recorder = _Recorder()
    gate = LLMGate(1, queue_timeout_secs=5.0)
    busy = _service(recorder, gate)
    async with gate.turn():  # another session's turn has the server
        await _prefill(busy, (_context(), "What is my name?"))
    assert recorder.bodies == []
    assert busy.prefills_skipped == 1
    # Free again: the next one is sent.
    free = _service(recorder, gate)
    await _prefill(free, (_context(), "What is my name?"))
    assert len(recorder.bodies) == 1
    assert free.prefills_skipped == 0


@pytest.mark.asyncio
async def test_a_turns_request_leaves_only_when_the_server_is_free() -> None:
    recorder = _Recorder()
    gate = LLMGate(1, queue_timeout_secs=5.0)
    llm = _service(recorder, gate)
    context = _context()
    context.add_message({"role": "user", "content": "What is my name?"})
    async with gate.turn():
        request = asyncio.create_task(llm._process_context(context))
        await asyncio.sleep(0.3)
        assert recorder.bodies == [], "sent while another turn had the server"
    await asyncio.wait_for(request, 5)
    assert len(recorder.bodies) == 1 and recorder.bodies[0]["stream"] is True

"""The think filter never lets reasoning reach TTS, whatever the chunking."""

from __future__ import annotations

import pytest
from pipecat.frames.frames import LLMFullResponseEndFrame, LLMFullResponseStartFrame, LLMTextFrame
from pipecat.tests.utils import run_test

from pipeline.conversation.think_filter import ThinkFilter, ThinkStripper

ANSWER = "<think>The user wants the time. I should say I lack a clock.</think>It is noon."


def _strip_in_chunks(text: str, size: int) -> str:
    stripper = ThinkStripper()
    out = [stripper.feed(text[i : i + size]) for i in range(0, len(text), size)]
    return "".join(out) + stripper.flush()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_think_block_removed_for_any_chunking(size: int) -> None:
    assert _strip_in_chunks(ANSWER, size) == "It is noon."


def test_text_without_tags_passes_unchanged() -> None:
    assert _strip_in_chunks("Sure, 3 < 4 and <b> stays.", 2) == "Sure, 3 < 4 and <b> stays."


def test_held_back_partial_tag_is_released_at_flush() -> None:
    stripper = ThinkStripper()
    assert stripper.feed("Done <thi") == "Done "
    assert stripper.flush() == "<thi"


def test_unterminated_think_block_says_nothing() -> None:
    assert _strip_in_chunks("<think>still reasoning when the stream was cut", 4) == ""


def test_two_blocks_and_text_between() -> None:
    assert _strip_in_chunks("A<think>x</think>B<think>y</think>C", 3) == "ABC"


@pytest.mark.asyncio
async def test_processor_filters_llm_text_frames() -> None:
    chunks = ["<thi", "nk>plan</th", "ink>Hello", " there."]
    frames = [LLMFullResponseStartFrame(), *(LLMTextFrame(c) for c in chunks)]
    frames.append(LLMFullResponseEndFrame())
    received, _ = await run_test(
        ThinkFilter(),
        frames_to_send=frames,
        expected_down_frames=[
            LLMFullResponseStartFrame,
            LLMTextFrame,
            LLMTextFrame,
            LLMFullResponseEndFrame,
        ],
    )
    text = "".join(f.text for f in received if isinstance(f, LLMTextFrame))
    assert text == "Hello there."

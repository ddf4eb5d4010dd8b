"""Clause chunking: the first piece is short, numbers and abbreviations stay whole."""

from __future__ import annotations

import numpy as np
import pytest
from pipecat.frames.frames import LLMFullResponseEndFrame, LLMFullResponseStartFrame, LLMTextFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.tests.utils import SleepFrame, run_test

from services.clause_chunker import ChunkPolicy, ClauseSplitter, ClauseTextAggregator
from services.tts import LocalKokoroTTSService, clause_text_processor
from tests.support.kokoro_stand_in import KokoroStandIn

ANSWER = (
    "Sure, the weather in Paris is usually mild in spring. Temperatures are around 15.5 degrees, "
    "e.g. in April, and 1,000 people say it is lovely."
)


def _split(text: str, step: int, policy: ChunkPolicy | None = None) -> list[str]:
    splitter = ClauseSplitter(policy)
    pieces: list[str] = []
    for i in range(0, len(text), step):
        pieces += splitter.feed(text[i : i + step])
    rest = splitter.flush()
    return pieces + ([rest] if rest else [])


@pytest.mark.parametrize("step", [1, 3, 8, 1000])
def test_pieces_rebuild_the_text_whatever_the_token_size(step: int) -> None:
    pieces = _split(ANSWER, step)
    assert " ".join(pieces) == ANSWER
    assert pieces[0] == "Sure, the weather in Paris"  # first piece: at most 5 words
    # The second is bounded too (here cut at its sentence end), then whole sentences.
    assert pieces[1] == "is usually mild in spring."
    assert pieces[2].startswith("Temperatures are around 15.5 degrees,")


def test_first_piece_cut_at_a_clause_once_it_has_two_words() -> None:
    assert _split("Hi, yes, of course I can help you with that today.", 4)[0] == "Hi, yes,"


def test_the_second_piece_is_bounded_and_later_ones_grow() -> None:
    words = " ".join(f"w{i}" for i in range(60)) + " end"
    lengths = [len(p.split()) for p in _split(words, 5)]
    assert lengths[:3] == [5, 8, 30]


def test_numbers_and_abbreviations_are_not_boundaries() -> None:
    # Word-count cuts are left out (a count may land anywhere): only punctuation is tested.
    policy = ChunkPolicy(first_max_words=30, second_max_words=30)
    text = "It is 15.5 degrees. That is 1,000 times e.g. more than U.S. cities."
    pieces = _split(text, 2, policy)
    assert "15.5 degrees." in pieces[0] + " " + pieces[1]
    assert all(not p.endswith(("15.", "1,", "e.g.", "U.S.")) for p in pieces)


def test_sentence_end_always_cuts() -> None:
    pieces = _split("Yes. No. Maybe so.", 1)
    assert pieces == ["Yes.", "No.", "Maybe so."]


@pytest.mark.asyncio
async def test_aggregator_releases_pieces_and_flushes_at_response_end() -> None:
    aggregator = ClauseTextAggregator()
    pieces: list[str] = []
    for token in ["Hello", " there,", " my", " friend", ". How", " are", " you"]:
        pieces += [a.text async for a in aggregator.aggregate(token)]
    assert pieces == ["Hello there,", "my friend."]
    assert aggregator.text.text == "How are you"
    rest = await aggregator.flush()
    assert rest is not None and rest.text == "How are you"
    assert await aggregator.flush() is None


@pytest.mark.asyncio
async def test_interruption_drops_unspoken_text_and_restarts_short() -> None:
    aggregator = ClauseTextAggregator()
    _ = [a async for a in aggregator.aggregate("Well, that is a long")]
    await aggregator.handle_interruption()
    assert aggregator.text.text == ""
    first = [a.text async for a in aggregator.aggregate("One two three four five six seven ")]
    assert first == ["One two three four five"]


class _PieceRecorder(KokoroStandIn):
    """A Kokoro engine that notes each piece it is asked to speak."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    async def synthesize_async(self, text: str) -> np.ndarray:
        self.pieces.append(text)
        return await super().synthesize_async(text)


@pytest.mark.asyncio
async def test_the_session_speaks_an_answer_clause_by_clause() -> None:
    """pipecat's slot between LLM and TTS (LLMTextProcessor) cuts the streamed answer, and the
    TTS speaks the pieces as they come: a short first clause, not the first sentence."""
    engine = _PieceRecorder()
    answer = "Sure, it is sunny and warm in Paris today, with a light breeze. Enjoy your walk!"
    tokens = [f"{word} " for word in answer.split()]
    await run_test(
        Pipeline([clause_text_processor(), LocalKokoroTTSService(engine)]),  # type: ignore[arg-type]
        frames_to_send=[
            LLMFullResponseStartFrame(),
            *[LLMTextFrame(token) for token in tokens],
            LLMFullResponseEndFrame(),
            SleepFrame(sleep=0.5),
        ],
    )
    assert len(engine.pieces) >= 3, engine.pieces
    # At most five words first (ChunkPolicy.first_max_words), well short of the first sentence.
    assert len(engine.pieces[0].split()) <= ChunkPolicy().first_max_words, engine.pieces
    assert " ".join(engine.pieces) == answer.strip()

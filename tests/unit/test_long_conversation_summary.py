"""`jetvoice bench --long-conversation`: turn 2 vs the last turn over several conversations."""

from __future__ import annotations

from pipeline.bench.long_conversation import TurnSample, summary


def _samples(conversation: int, ttfts: list[float]) -> list[TurnSample]:
    return [
        TurnSample(conversation, turn, ttft, prompt_chars=100 * turn, context_turns=turn - 1)
        for turn, ttft in enumerate(ttfts, start=1)
    ]


def test_turns_are_compared_by_their_median_over_the_conversations() -> None:
    samples = [
        *_samples(1, [500, 300, 310, 320, 900]),
        *_samples(2, [400, 200, 210, 220, 330]),
        *_samples(3, [450, 250, 260, 270, 360]),
    ]
    result = summary(samples, [])
    assert result["conversations"] == 3
    # One slow last turn (900 ms) in one conversation does not make the headline.
    assert result["turn_2_ttft_ms"] == 250
    assert result["turn_5_ttft_ms"] == 360
    assert result["ratio"] == 1.44
    assert result["median_turns_2_4_ms"] == 260
    assert result["median_turns_3_5_ms"] == 310
    assert result["folds"] == 0

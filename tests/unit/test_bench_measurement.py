"""Splitting a turn into stages, matching latency messages, and planning the corpus's calls."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipeline.bench.corpus import (
    Utterance,
    load_corpus,
    parse_corpus,
    plan_calls,
    selected_turns,
)
from pipeline.bench.driver import pick_latency, server_errors
from pipeline.bench.measurement import SEGMENTS, derive_stages, smart_turn_fields
from pipeline.webrtc.signalling import ServerMessage

# A latency message's data as the tuned server sends it (trimmed).
TUNED: dict[str, Any] = {
    "turn": 3,
    "measured_from": "user_silence",
    "total_ms": 4016.3,
    "end_of_turn": {"is_complete": True, "probability": 0.9901, "e2e_processing_time_ms": 164.5},
    "fallback": False,
    "timeline_ms": {
        "vad_stopped": 204.8,
        "turn_end": 814.9,
        "transcript": 809.5,
        "llm_first_token": 1389.6,
        "llm_first_clause": 1777.8,
        "tts_first_audio": 3997.5,
        "bot_started_speaking": 4016.3,
    },
    "transcript": "What is the weather in Paris?",
}


def test_stages_add_up_to_voice_to_voice() -> None:
    stages = derive_stages(4100.0, TUNED)
    assert stages.vad_stop == pytest.approx(204.8)
    assert stages.stt == pytest.approx(809.5 - 204.8)
    assert stages.turn_wait == pytest.approx(814.9 - 809.5)
    assert stages.llm_ttft == pytest.approx(1389.6 - 814.9)
    assert stages.llm_first_clause == pytest.approx(1777.8 - 814.9)
    assert stages.tts_first_audio == pytest.approx(3997.5 - 1777.8)
    assert stages.server_output == pytest.approx(4016.3 - 3997.5)
    assert stages.transport == pytest.approx(4100.0 - 4016.3)
    segments = [getattr(stages, key) for key, _ in SEGMENTS]
    assert sum(segments) == pytest.approx(4100.0)
    # Overhead is what is left after the model stages: server output + transport here.
    assert stages.overhead == pytest.approx((4016.3 - 3997.5) + (4100.0 - 4016.3))


def test_transport_splits_at_the_latency_message_arrival() -> None:
    stages = derive_stages(4100.0, TUNED, 30.0)
    assert stages.transport_out == pytest.approx(30.0)
    assert stages.transport_in == pytest.approx(4100.0 - 4016.3 - 30.0)
    assert derive_stages(4100.0, TUNED).transport_in is None


def test_turn_ending_before_the_transcript_waits_for_it() -> None:
    timeline = {**TUNED["timeline_ms"], "turn_end": 700.0}
    stages = derive_stages(4100.0, {**TUNED, "timeline_ms": timeline})
    assert stages.turn_wait == 0.0
    assert stages.llm_ttft == pytest.approx(1389.6 - 809.5)


def test_without_a_clause_chunker_the_llm_stage_ends_at_the_first_token() -> None:
    timeline = {**TUNED["timeline_ms"], "llm_first_clause": None}
    stages = derive_stages(4100.0, {**TUNED, "timeline_ms": timeline})
    assert stages.llm_first_clause is None
    assert stages.llm_segment == pytest.approx(1389.6 - 814.9)
    assert stages.tts_first_audio == pytest.approx(3997.5 - 1389.6)
    assert stages.overhead is not None


def test_an_old_server_message_leaves_stages_unknown() -> None:
    stages = derive_stages(2500.0, {"total_ms": 2400.0, "measured_from": "user_silence"})
    assert stages.server_total == 2400.0
    assert stages.transport == pytest.approx(100.0)
    assert stages.stt is None and stages.overhead is None
    assert derive_stages(2500.0, None).voice_to_voice == 2500.0


def test_a_breakdown_that_lost_the_users_silence_is_not_used() -> None:
    lost = {**TUNED, "measured_from": "client_connected", "total_ms": 41976.0}
    stages = derive_stages(9000.0, lost)
    assert stages.voice_to_voice == 9000.0
    assert stages.server_total is None and stages.transport is None


def test_smart_turn_fields() -> None:
    assert smart_turn_fields(TUNED) == (0.9901, True, False)
    incomplete = {"end_of_turn": {"is_complete": False, "probability": 0.02}}
    assert smart_turn_fields(incomplete) == (0.02, False, True)
    assert smart_turn_fields(None) == (None, None, None)


def _latency(at: float, turn: int, measured_from: str = "user_silence") -> ServerMessage:
    data: dict[str, Any] = {"label": "jetvoice", "type": "latency"}
    data["data"] = {"turn": turn, "measured_from": measured_from}
    return ServerMessage(received_at=at, data=data)


def test_server_errors_are_listed_by_stage() -> None:
    error = {"label": "jetvoice", "type": "error", "data": {"stage": "llm", "message": "timeout"}}
    messages = [
        ServerMessage(received_at=1.0, data=error),
        ServerMessage(received_at=5.0, data=error),
        ServerMessage(received_at=6.0, data={"label": "rtvi-ai", "type": "error", "data": {}}),
    ]
    assert server_errors(messages, since=2.0) == ("llm: timeout",)


def test_pick_latency_skips_the_greeting_and_earlier_turns() -> None:
    messages = [
        _latency(1.0, 1, "client_connected"),
        _latency(5.0, 2),
        ServerMessage(received_at=9.0, data={"type": "bot-started-speaking"}),
        _latency(12.0, 3),
    ]
    chosen, count = pick_latency(messages, since=8.0, first_voice=12.05)
    assert chosen is not None and chosen.data["data"]["turn"] == 3 and count == 1
    assert pick_latency(messages, since=13.0, first_voice=None) == (None, 0)


def test_pick_latency_of_a_split_turn_is_the_one_heard() -> None:
    messages = [_latency(10.0, 2), _latency(14.0, 3), _latency(30.0, 4)]
    chosen, count = pick_latency(messages, since=8.0, first_voice=14.1)
    assert chosen is not None and chosen.data["data"]["turn"] == 3 and count == 3


def test_builtin_corpus_is_valid_and_varied() -> None:
    spec = load_corpus()
    assert len(spec.voices) >= 4
    assert {t.fixture for t in spec.single_turns if t.fixture} == {
        "hello_world.wav",
        "weather_question.wav",
        "turn_on_the_living_room_lamp.wav",
    }
    lengths = [len(t.text.split()) for t in spec.single_turns]
    assert min(lengths) <= 3 and max(lengths) >= 15
    assert any(len(turns) >= 3 for _, turns in spec.conversations)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "top level"),
        ({"single_turns": [{"id": "a", "text": "hi"}]}, "exactly one of"),
        ({"single_turns": [{"id": "a", "text": " ", "voice": "af_heart"}]}, "'text'"),
        (
            {"single_turns": [{"id": "a", "text": "x", "voice": "v"}] * 2},
            "duplicate turn ids a",
        ),
        ({"conversations": [{"id": "c", "turns": []}]}, "non-empty list"),
        ({}, "no turns"),
    ],
)
def test_parse_corpus_rejects(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_corpus(data)


def test_plan_calls_groups_single_turns_and_keeps_conversations_whole() -> None:
    spec = parse_corpus(
        {
            "single_turns": [{"id": f"s{i}", "text": "x", "voice": "v"} for i in range(5)],
            "conversations": [
                {"id": "c", "turns": [{"id": f"c{i}", "text": "x", "voice": "v"} for i in range(3)]}
            ],
        }
    )
    selection = selected_turns(spec, None)
    silence = np.zeros(10, dtype=np.float32)
    utterances = {t.id: Utterance(t, silence, 16000, 0.0, 0.0, "0") for _name, t in selection}
    calls = plan_calls(selection, utterances, repeat=2, turns_per_call=2)
    shape = [(c.conversation, c.repeat, [u.spec.id for u in c.turns]) for c in calls]
    assert shape[:4] == [
        ("single", 0, ["s0", "s1"]),
        ("single", 0, ["s2", "s3"]),
        ("single", 0, ["s4"]),
        ("c", 0, ["c0", "c1", "c2"]),
    ]
    assert len(shape) == 8 and shape[4] == ("single", 1, ["s0", "s1"])
    cut = plan_calls(selected_turns(spec, 2), utterances, turns_per_call=4)
    assert [[u.spec.id for u in c.turns] for c in cut] == [["s0", "s1"]]

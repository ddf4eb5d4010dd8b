"""Unit tests for what the loopback caller sends and accepts besides media."""

import json

import pytest

from pipeline.webrtc.signalling import (
    client_ready_message,
    parse_answer,
    ping_message,
    split_candidates,
)

BUNDLED_OFFER = "\r\n".join(
    [
        "v=0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:0",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host",
        "a=candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host",
        "a=end-of-candidates",
        "a=ice-ufrag:abcd",
        "m=application 9 DTLS/SCTP 5000",
        "a=mid:1",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host",
        "a=end-of-candidates",
    ]
)


def test_split_candidates_strips_them_and_sends_each_once() -> None:
    sdp, candidates = split_candidates(BUNDLED_OFFER)
    assert "a=candidate" not in sdp and "end-of-candidates" not in sdp
    assert "a=ice-ufrag:abcd" in sdp and sdp.endswith("\r\n")
    assert candidates == [
        {
            "candidate": "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host",
            "sdp_mid": "0",
            "sdp_mline_index": 0,
        },
        {
            "candidate": "candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host",
            "sdp_mid": "0",
            "sdp_mline_index": 0,
        },
    ]


def test_parse_answer_accepts_pipecats_reply() -> None:
    body = json.dumps({"sdp": "v=0\r\n", "type": "answer", "pc_id": "pc-1"})
    assert parse_answer(200, body) == {"sdp": "v=0\r\n", "type": "answer", "pc_id": "pc-1"}


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (404, "Not Found", "HTTP 404"),
        (200, "<html>", "not JSON"),
        (200, json.dumps({"sdp": "v=0", "type": "offer", "pc_id": "x"}), "type 'answer'"),
        (200, json.dumps({"sdp": "", "type": "answer", "pc_id": "x"}), "'sdp'"),
        (200, json.dumps({"sdp": "v=0", "type": "answer"}), "'pc_id'"),
    ],
)
def test_parse_answer_rejects_unusable_replies(status: int, body: str, message: str) -> None:
    with pytest.raises(ConnectionError, match=message):
        parse_answer(status, body)


def test_keepalive_and_client_ready_match_what_pipecat_expects() -> None:
    assert ping_message().startswith("ping")
    ready = client_ready_message()
    assert ready["label"] == "rtvi-ai" and ready["type"] == "client-ready"
    assert ready["data"]["version"].split(".")[0] == "2"

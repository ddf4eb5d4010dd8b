"""SDP offers recorded from real peers (tests/fixtures/sdp/), for signalling tests."""

from __future__ import annotations

from pathlib import Path

SDP_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sdp"


def chromium_offer() -> str:
    """The offer headless Chromium sends, made by tests/support/capture_offer.py (CRLF)."""
    return (SDP_FIXTURES / "chromium_offer.sdp").read_bytes().decode("utf-8")


def aiortc_offer() -> str:
    """aiortc's offer (what the LoopbackCaller sends), with a host candidate on 127.0.0.1."""
    return (SDP_FIXTURES / "aiortc_offer.sdp").read_bytes().decode("utf-8")

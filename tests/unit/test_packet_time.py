"""``a=ptime`` in an answer: added to audio sections that carry Opus, read back by a caller."""

from __future__ import annotations

from pathlib import Path

from pipeline.webrtc.packet_time import packet_time, with_packet_time

SDP = Path(__file__).resolve().parents[1] / "fixtures" / "sdp"


def _audio_section(sdp: str) -> list[str]:
    lines = sdp.split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("m=audio"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("m=")), len(lines))
    return lines[start:end]


def test_a_chromium_sdp_gets_one_ptime_in_its_audio_section_only() -> None:
    sdp = (SDP / "chromium_offer.sdp").read_text().replace("\r\n", "\n").replace("\n", "\r\n")
    assert packet_time(sdp) is None
    asked = with_packet_time(sdp)
    assert packet_time(asked) == 10
    assert _audio_section(asked).count("a=ptime:10") == 1
    assert asked.count("a=ptime:") == 1  # the video and data sections are left alone
    assert asked.endswith("\r\n")
    # Everything else is as it was.
    assert asked.replace("a=ptime:10\r\n", "") == sdp


def test_an_existing_ptime_is_replaced_not_doubled() -> None:
    sdp = (SDP / "aiortc_offer.sdp").read_text()
    twice = with_packet_time(with_packet_time(sdp, 20), 10)
    assert packet_time(twice) == 10
    assert twice.count("a=ptime:") == 1


def test_an_audio_section_without_opus_is_not_touched() -> None:
    sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n"
    assert with_packet_time(sdp) == sdp
    assert packet_time(sdp) is None


def test_a_malformed_ptime_reads_as_none() -> None:
    sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ptime:soon\r\n"
    assert packet_time(sdp) is None

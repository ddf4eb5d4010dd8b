"""The bot's output reaches everyone in a conversation, paced by the host or, once it left, by
the peers who joined."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from pipecat.frames.frames import OutputAudioRawFrame, OutputTransportMessageUrgentFrame
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.transport import SmallWebRTCClient

from pipeline.sessions.party import Party
from pipeline.webrtc.shared_transport import SharedOutputTransport

CHUNK = bytes(960)  # 20 ms at 24 kHz


class FakeHostClient:
    """The host's side of pipecat's SmallWebRTC client: takes audio or not, keeps messages."""

    def __init__(self, *, takes_audio: bool, write_secs: float = 0.0) -> None:
        self.takes_audio = takes_audio
        self.write_secs = write_secs
        self.audio: list[bytes] = []
        self.messages: list[Any] = []

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if not self.takes_audio:
            return False
        await asyncio.sleep(self.write_secs)
        self.audio.append(frame.audio)
        return True

    async def send_message(self, frame: OutputTransportMessageUrgentFrame) -> None:
        self.messages.append(frame.message)


class FakeParty:
    """Guests whose writes complete when the test says so."""

    def __init__(self, guests: int, *, host_present: bool = True) -> None:
        self.host_present = host_present
        self.guests = guests
        self.futures: list[asyncio.Future[bool]] = []
        self.messages: list[Any] = []

    def send_audio(self, audio: bytes) -> list[asyncio.Future[bool]]:
        loop = asyncio.get_running_loop()
        new: list[asyncio.Future[bool]] = [loop.create_future() for _ in range(self.guests)]
        self.futures.extend(new)
        return new

    def send_message(self, message: Any) -> None:
        self.messages.append(message)


def _output(host: FakeHostClient, party: FakeParty) -> SharedOutputTransport:
    return SharedOutputTransport(
        cast(SmallWebRTCClient, host),
        TransportParams(audio_out_enabled=True, audio_out_sample_rate=24000),
        cast(Party, party),
    )


def _chunk() -> OutputAudioRawFrame:
    return OutputAudioRawFrame(audio=CHUNK, sample_rate=24000, num_channels=1)


@pytest.mark.asyncio
async def test_with_the_host_there_its_track_sets_the_pace_and_guests_get_the_same_audio() -> None:
    host = FakeHostClient(takes_audio=True, write_secs=0.02)
    party = FakeParty(guests=2)
    output = _output(host, party)
    started = time.monotonic()
    # The guests never take theirs here: the host's pace is all that is waited for.
    assert await asyncio.wait_for(output.write_audio_frame(_chunk()), 1.0)
    assert time.monotonic() - started < 0.5
    assert host.audio == [CHUNK] and len(party.futures) == 2


@pytest.mark.asyncio
async def test_once_the_host_left_the_first_guest_to_take_the_audio_sets_the_pace() -> None:
    party = FakeParty(guests=2)
    output = _output(FakeHostClient(takes_audio=False), party)
    write = asyncio.create_task(output.write_audio_frame(_chunk()))
    await asyncio.sleep(0.1)
    assert not write.done(), "the write did not wait for any guest"
    party.futures[1].set_result(True)
    assert await asyncio.wait_for(write, 1.0)


@pytest.mark.asyncio
async def test_a_guest_that_takes_nothing_stalls_a_write_only_briefly() -> None:
    output = _output(FakeHostClient(takes_audio=False), FakeParty(guests=1))
    started = time.monotonic()
    assert await asyncio.wait_for(output.write_audio_frame(_chunk()), 3.0)
    assert time.monotonic() - started < 2.0


@pytest.mark.asyncio
async def test_with_nobody_to_hear_it_the_audio_is_not_taken() -> None:
    output = _output(FakeHostClient(takes_audio=False), FakeParty(guests=0))
    assert not await asyncio.wait_for(output.write_audio_frame(_chunk()), 1.0)


@pytest.mark.asyncio
async def test_messages_go_to_the_guests_and_to_the_host_while_it_is_there() -> None:
    host, party = FakeHostClient(takes_audio=True), FakeParty(guests=1)
    output = _output(host, party)
    await output.send_message(OutputTransportMessageUrgentFrame(message={"type": "a"}))
    party.host_present = False
    await output.send_message(OutputTransportMessageUrgentFrame(message={"type": "b"}))
    assert host.messages == [{"type": "a"}]
    assert party.messages == [{"type": "a"}, {"type": "b"}]

"""Several people in one conversation, over real peers on 127.0.0.1 (no models).

The real app and session manager serve a joinable echo session (``shared_echo_session``): the
session's input (the host's microphone with the joined peers' mixed in) is sent back as the
bot's voice to everyone. So what a peer hears shows both halves of joining: its voice reached
the session's one input stream, and the session's output reached every peer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from pipeline.bench.client.audio_clip import load_wav
from pipeline.bench.client.loopback_caller import LoopbackCaller
from pipeline.config import ServerConfig
from pipeline.server.app import create_app
from pipeline.sessions.manager import PeerRequestHandler, SessionManager
from pipeline.webrtc.ice_policy import loopback_only_ice
from tests.loopback.echo_bot import serve_on_loopback, shared_echo_session
from tests.support.conversation import FIXTURES
from tests.support.runtime import unloaded_runtime

HEAR_BOUND_S = 10.0
STATE_BOUND_S = 10.0


async def _until(condition: Callable[[], bool], what: str) -> None:
    async def poll() -> None:
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), STATE_BOUND_S)
    except TimeoutError:
        raise AssertionError(f"not within {STATE_BOUND_S:g} s: {what}") from None


async def _speak_and_listen(
    speaker: LoopbackCaller, listeners: list[LoopbackCaller]
) -> list[tuple[float, float]]:
    """``speaker`` says hello; when each listener heard a voice start and end."""
    clip, rate = load_wav(FIXTURES / "hello_world.wav")
    started = time.monotonic()
    await speaker.say(np.concatenate([clip, np.zeros(rate // 2, np.float32)]), rate)
    heard = []
    for listener in listeners:
        first = await listener.wait_for_voice(after=started, timeout=HEAR_BOUND_S)
        end = await listener.wait_for_silence(0.5, timeout=HEAR_BOUND_S, after=first)
        heard.append((first, end))
    return heard


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_a_joined_peer_is_heard_and_hears_and_the_conversation_outlives_its_host(
    network_audit: list[str],
) -> None:
    runtime = unloaded_runtime(ServerConfig(max_sessions=1))
    handler = PeerRequestHandler(ice_servers=[])
    sessions = SessionManager(runtime, handler, start_session=shared_echo_session)
    app = create_app(runtime, sessions=sessions)
    callers: list[LoopbackCaller] = []

    def call(base_url: str, join: str | None = None) -> LoopbackCaller:
        caller = LoopbackCaller(base_url, join=join)
        callers.append(caller)
        return caller

    async def conversation(base_url: str) -> None:
        host = call(base_url)
        await host.connect()
        sid = host.session_id
        assert sid, "the answer names no session"
        guest = call(base_url, join=sid)
        await guest.connect()
        assert guest.session_id == sid
        # One pipeline for both (max_sessions=1 did not refuse the join), two peers.
        assert (sessions.active, sessions.guests, handler.peer_count) == (1, 1, 2)

        # The guest speaks: its voice is in the session's input, and both hear the echo.
        clip, rate = load_wav(FIXTURES / "hello_world.wav")
        (host_first, host_end), (guest_first, _) = await _speak_and_listen(guest, [host, guest])
        assert abs(host_first - guest_first) < 0.25, (host_first, guest_first)
        # Mixed into the host's time slots, not interleaved with its frames: the echo lasts
        # as long as the clip, not twice as long.
        assert host_end - host_first < len(clip) / rate + 0.5, host_end - host_first
        # The host speaks: the guest hears it too.
        await _speak_and_listen(host, [guest, host])

        # The guest leaves: the host's conversation goes on.
        await guest.close()
        await _until(lambda: sessions.guests == 0 and handler.peer_count == 1, "guest gone")
        assert sessions.active == 1
        await _speak_and_listen(host, [host])

        # Someone joins again, then the host leaves: the conversation goes on with them, the
        # mixer's own clock now carrying their voice.
        second = call(base_url, join=sid)
        await second.connect()
        await host.close()
        await _until(lambda: handler.peer_count == 1, "host gone")
        assert sessions.active == 1 and sessions.guests == 1
        await _speak_and_listen(second, [second])

        # The last person leaves: the session ends and everything is freed.
        await second.close()
        await _until(
            lambda: sessions.active == 0 and handler.peer_count == 0, "session over when empty"
        )

    async def scenario(run: Callable[[str], Awaitable[None]]) -> None:
        with loopback_only_ice():
            try:
                async with serve_on_loopback(app) as base_url:
                    try:
                        await run(base_url)
                    finally:
                        for caller in callers:
                            await caller.close()
            finally:
                await sessions.close()
        assert sessions.active == 0 and handler.peer_count == 0

    await asyncio.wait_for(scenario(conversation), 100)
    assert not network_audit, network_audit


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_a_joined_peer_that_vanishes_is_dropped_and_the_host_goes_on(
    network_audit: list[str],
) -> None:
    timeout_s = 3.0
    runtime = unloaded_runtime(ServerConfig(max_sessions=1, peer_timeout_secs=timeout_s))
    handler = PeerRequestHandler(ice_servers=[])
    sessions = SessionManager(runtime, handler, start_session=shared_echo_session)
    app = create_app(runtime, sessions=sessions)

    async def scenario() -> None:
        with loopback_only_ice():
            try:
                async with serve_on_loopback(app) as base_url, LoopbackCaller(base_url) as host:
                    assert host.session_id is not None
                    async with LoopbackCaller(base_url, join=host.session_id) as guest:
                        await _until(lambda: sessions.guests == 1, "guest in")
                        vanished = time.monotonic()
                        await guest.vanish()
                        await _until(lambda: handler.peer_count == 1, "vanished guest gone")
                        took = time.monotonic() - vanished
                    assert sessions.active == 1 and sessions.guests == 0
                    assert took < timeout_s + 3.0, took
                    await _speak_and_listen(host, [host])
            finally:
                await sessions.close()
        assert sessions.active == 0 and handler.peer_count == 0

    await asyncio.wait_for(scenario(), 50)
    assert not network_audit, network_audit

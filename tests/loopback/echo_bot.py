"""An in-process echo bot served the way jetvoice's server serves its bot.

FastAPI on 127.0.0.1 answers POST/PATCH /api/offer through pipecat's SmallWebRTCRequestHandler
and runs, per connection, `transport.input() -> EchoInputAudio -> transport.output()`.
"""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (
    IceCandidate,
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.workers.runner import WorkerRunner

from pipeline.runtime import AgentRuntime
from pipeline.sessions.party import Party
from pipeline.webrtc.ice_policy import loopback_only_ice
from pipeline.webrtc.shared_transport import SharedTransport


class EchoInputAudio(FrameProcessor):
    """Turns the caller's audio into bot audio: the output transport ignores input frames."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Re-emit each InputAudioRawFrame as an OutputAudioRawFrame; pass the rest on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(
                OutputAudioRawFrame(
                    audio=frame.audio,
                    sample_rate=frame.sample_rate,
                    num_channels=frame.num_channels,
                )
            )
        else:
            await self.push_frame(frame, direction)


@dataclass
class EchoServer:
    """A running echo server: its URL and the bot sessions it started."""

    base_url: str
    bots: list[asyncio.Task[None]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def run_echo_server() -> AsyncIterator[EchoServer]:
    """Serve the echo bot on a free 127.0.0.1 port; on exit, end every session and the server."""
    with loopback_only_ice():
        handler = SmallWebRTCRequestHandler(ice_servers=[])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        echo = EchoServer(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}")

        async def start_bot(connection: SmallWebRTCConnection) -> None:
            transport = SmallWebRTCTransport(
                connection,
                TransportParams(
                    audio_in_enabled=True,
                    audio_out_enabled=True,
                    audio_in_sample_rate=16000,
                    audio_out_sample_rate=24000,
                ),
            )
            worker = PipelineWorker(
                Pipeline([transport.input(), EchoInputAudio(), transport.output()])
            )
            runner = WorkerRunner(handle_sigint=False)

            @transport.event_handler("on_client_disconnected")
            async def on_client_disconnected(transport: Any, client: Any) -> None:
                await worker.cancel()

            await runner.add_workers(worker)
            echo.bots.append(asyncio.create_task(runner.run(), name="echo-bot"))

        app = FastAPI()

        @app.post("/api/offer")
        async def offer(request: Request) -> dict[str, str] | None:
            body = await request.json()
            return await handler.handle_web_request(SmallWebRTCRequest.from_dict(body), start_bot)

        @app.patch("/api/offer")
        async def patch(request: Request) -> dict[str, str]:
            body = await request.json()
            candidates = [IceCandidate(**c) for c in body["candidates"]]
            await handler.handle_patch_request(
                SmallWebRTCPatchRequest(pc_id=body["pc_id"], candidates=candidates)
            )
            return {"status": "success"}

        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="echo-http")
        try:
            async with asyncio.timeout(10):
                while not server.started:  # noqa: ASYNC110 - uvicorn has no "started" event
                    await asyncio.sleep(0.01)
            yield echo
        finally:
            await asyncio.wait_for(handler.close(), 10)
            if echo.bots:
                _, pending = await asyncio.wait(echo.bots, timeout=10)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=5)
            server.should_exit = True
            await asyncio.wait_for(serving, 10)
            sock.close()


def echo_session(
    connection: SmallWebRTCConnection, _runtime: AgentRuntime, _session_id: str, _party: Party
) -> Coroutine[Any, Any, None]:
    """A session starter (see ``pipeline.sessions.manager``) running the echo pipeline."""
    transport = SmallWebRTCTransport(
        connection,
        TransportParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=16000,
            audio_out_sample_rate=24000,
        ),
    )
    worker = PipelineWorker(Pipeline([transport.input(), EchoInputAudio(), transport.output()]))

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, client: Any) -> None:
        await worker.cancel()

    async def run() -> None:
        runner = WorkerRunner(handle_sigint=False, handle_sigterm=False)
        await runner.add_workers(worker)
        await runner.run()

    return run()


def shared_echo_session(
    connection: SmallWebRTCConnection, _runtime: AgentRuntime, _session_id: str, party: Party
) -> Coroutine[Any, Any, None]:
    """An echo session others can join: everyone's voice, mixed, echoed to everyone.

    Wired as :func:`pipeline.session.build_worker` wires a party: the mixer right after the
    input, the shared output, and a session that outlives its host while anyone joined is in it.
    """
    transport = SharedTransport(
        connection,
        TransportParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            # The session's input rate, at which the party mixes guests in.
            audio_in_sample_rate=party.mixer.sample_rate,
            audio_out_sample_rate=24000,
        ),
        party,
    )
    worker = PipelineWorker(
        Pipeline([transport.input(), party.mixer, EchoInputAudio(), transport.output()])
    )

    async def end() -> None:
        await worker.cancel()

    party.open(out_sample_rate=24000, on_empty=end)

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, client: Any) -> None:
        if not await party.host_left():
            await end()

    async def run() -> None:
        runner = WorkerRunner(handle_sigint=False, handle_sigterm=False)
        await runner.add_workers(worker)
        await runner.run()

    return run()


@contextlib.asynccontextmanager
async def serve_on_loopback(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` (no lifespan) on a free 127.0.0.1 port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="loopback-http")
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn has no "started" event
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        sock.close()

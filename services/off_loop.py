"""Models check that they were not called on an event loop's thread.

Every model call (Whisper, Kokoro, Silero; Smart Turn through pipecat's model executor) runs on
a worker thread: a decode on the event loop would hold every session's audio for its whole
length. asyncio's debug mode logs callbacks that hold the loop too long, but it measures wall
time, which busy cores stretch for any callback (a 5 ms frame handler took 91 ms with a second
agent beside it); this check is exact: the calling thread runs an event loop or it does not.
RNNoise is the exception by design: it denoises each 10 ms frame inline in microseconds
(pipeline.audio.noise_filter).
"""

from __future__ import annotations

import asyncio

from loguru import logger

ON_LOOP = "inference on the event loop"


def check_off_loop(model: str) -> bool:
    """Log an error when called on a thread that runs an event loop; False then."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    logger.error(f"{ON_LOOP}: {model} was called on the event loop's thread")
    return False

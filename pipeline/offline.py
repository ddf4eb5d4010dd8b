"""Run-time offline guarantee: libraries that can reach a model hub are told not to."""

from __future__ import annotations

import os

# Set by the app itself, not only by tests: faster-whisper, huggingface_hub, transformers and
# friends then fail fast on a missing file instead of trying the network.
OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "PIPECAT_DISABLE_TELEMETRY": "1",
}


def enforce_offline_environment() -> None:
    """Set the offline switches for this process and every child it starts."""
    os.environ.update(OFFLINE_ENVIRONMENT)

"""The cpu profile's models, as the integration tests that run them in-process load them."""

from __future__ import annotations

import pytest

from models.paths import profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.config import AgentConfig, LLMConfig, STTConfig, TTSConfig
from services.stt import WhisperEngine


@pytest.fixture(scope="module")
def cpu_config() -> AgentConfig:
    """The cpu profile's models with the default turn settings and RNNoise on (no LLM: its URL
    is a closed port)."""
    try:
        paths = profile_paths("cpu", ModelStore(default_models_dir()))
    except ModelUnavailableError as error:
        pytest.fail(f"cpu models missing (run `just setup`): {error}")
    return AgentConfig(
        profile="cpu",
        stt=STTConfig(model_dir=paths.stt_dir),
        tts=TTSConfig(model_path=paths.tts_path, voices_path=paths.voices_path),
        llm=LLMConfig(server="external", base_url="http://127.0.0.1:9/v1"),
        warmup=False,
    )


@pytest.fixture(scope="module")
def whisper(cpu_config: AgentConfig) -> WhisperEngine:
    """The cpu profile's Whisper, loaded once for the module."""
    return WhisperEngine(cpu_config.stt)

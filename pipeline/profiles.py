"""From a profile name and CLI flags to one :class:`AgentConfig`."""

from __future__ import annotations

import argparse

from models.paths import profile_paths
from models.store import ModelStore
from pipeline.config import (
    AgentConfig,
    LLMConfig,
    LLMServerKind,
    ServerConfig,
    STTConfig,
    TTSConfig,
)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def build_agent_config(args: argparse.Namespace, store: ModelStore) -> AgentConfig:
    """Resolve the profile's models (quick size check) and apply the flags."""
    paths = profile_paths(args.profile, store)
    cuda = paths.device == "cuda"
    default_server: LLMServerKind = "vllm" if cuda else "llamacpp"
    server: LLMServerKind = default_server if args.llm == "auto" else args.llm
    if server == "external" and not args.llm_url:
        raise ValueError("--llm external needs --llm-url http://HOST:PORT/v1")
    if args.max_sessions < 1:
        raise ValueError("--max-sessions must be at least 1")
    return AgentConfig(
        profile=paths.profile,
        stt=STTConfig(
            model_dir=paths.stt_dir,
            device="cuda" if cuda else "cpu",
            compute_type="float16" if cuda else "int8",
        ),
        tts=TTSConfig(
            model_path=paths.tts_path,
            voices_path=paths.voices_path,
            voice=args.voice,
            providers=("CUDAExecutionProvider", "CPUExecutionProvider")
            if cuda
            else ("CPUExecutionProvider",),
        ),
        llm=LLMConfig(
            server=server,
            base_url=args.llm_url,
            model=args.llm_model,
            model_path=paths.llm_path,
            port=args.llm_port,
        ),
        server=ServerConfig(host=args.host, port=args.port, max_sessions=args.max_sessions),
        noise_filter=not args.no_noise_filter,
        warmup=not args.no_warmup,
        variant=args.pipeline,
    )

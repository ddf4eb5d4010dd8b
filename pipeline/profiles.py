"""From a profile name and CLI flags to one :class:`AgentConfig`."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from pathlib import Path

from models.paths import profile_paths
from models.store import ModelStore
from pipeline.config import (
    DEFAULT_COMPUTE_NICE,
    DEFAULT_LLM_NICE,
    AgentConfig,
    ContextWindowConfig,
    LLMConfig,
    LLMServerKind,
    ServerConfig,
    STTConfig,
    TTSConfig,
)
from pipeline.conversation.history_cli import history_config
from pipeline.server.access import is_loopback_host
from pipeline.server.certs import CertReport, default_state_dir, ensure_certificates
from pipeline.server.lan_addresses import LocalNames, local_names, url_host
from pipeline.server.pairing import load_or_create_token
from pipeline.tools.cli import tools_config

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

# Concurrent sessions by device when --max-sessions is not given. Memory is not what runs out
# first: the engines are shared, and each session adds only its VAD, Smart Turn, RNNoise and
# buffers (~100 MB); on the cpu profile two callers already keep 2 cores busy.
DEFAULT_MAX_SESSIONS = {"cpu": 2, "cuda": 4}


class InsecureBindError(ValueError):
    """Plain HTTP on an address other devices can reach."""


def check_bind_security(host: str, *, tls: bool) -> None:
    """Refuse plain HTTP on a non-loopback address, saying how to get a certificate."""
    if tls or is_loopback_host(host):
        return
    raise InsecureBindError(
        f"refusing to serve plain HTTP on {host}: phones and other computers give a page the "
        "microphone only over HTTPS, and the pairing token would cross the network in clear "
        "text.\n"
        "  Make this machine's certificate:  jetvoice certs\n"
        f"  then start with HTTPS:            jetvoice serve --host {host} --tls\n"
        "  (or bring your own: --certfile FILE --keyfile FILE; "
        "to stay on this machine only, leave --host at 127.0.0.1)"
    )


def public_urls(host: str, port: int, scheme: str, names: LocalNames | None) -> tuple[str, ...]:
    """The URLs to open from another device (or this one, for a loopback bind)."""
    if is_loopback_host(host) or names is None:
        return (f"{scheme}://{url_host(host)}:{port}/",)
    try:
        bound = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return (f"{scheme}://{host}:{port}/",)
    if not bound.is_unspecified:
        return (f"{scheme}://{url_host(bound)}:{port}/",)
    # 0.0.0.0 listens on IPv4 only; :: on both (Linux's default dual stack).
    addresses = [a for a in names.lan_addresses if bound.version == 6 or a.version == 4]
    urls = [f"{scheme}://{url_host(a)}:{port}/" for a in addresses]
    mdns = [n for n in names.dns_names if n.endswith(".local")]
    urls += [f"{scheme}://{n}:{port}/" for n in mdns]
    return tuple(urls) or (f"{scheme}://127.0.0.1:{port}/",)


def build_server_config(
    args: argparse.Namespace, state_dir: Path, names: LocalNames | None = None
) -> tuple[ServerConfig, CertReport | None]:
    """The front end's config: bind check first, then certificates and the pairing token.

    Raises InsecureBindError (plain HTTP off loopback) or ValueError (bad TLS flags) before
    anything is written.
    """
    certfile, keyfile = args.certfile, args.keyfile
    if (certfile is None) != (keyfile is None):
        raise ValueError("--certfile and --keyfile go together")
    own_cert = certfile is not None
    if own_cert and args.tls:
        raise ValueError("--tls uses jetvoice's own certificate; drop it with --certfile")
    check_bind_security(args.host, tls=args.tls or own_cert)
    if args.max_sessions is not None and args.max_sessions < 1:
        raise ValueError("--max-sessions must be at least 1")
    max_guests = getattr(args, "max_guests", ServerConfig.max_guests)
    if max_guests < 0:
        raise ValueError("--max-guests must be 0 or more")
    for path in (certfile, keyfile):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"no such file: {path}")
    report: CertReport | None = None
    ca_certfile: Path | None = None
    loopback = is_loopback_host(args.host)
    if args.tls or not loopback:
        names = _with_bound_address(names or local_names(), args.host)
        if args.tls:
            report = ensure_certificates(state_dir, names)
            certfile, keyfile = report.paths.server_cert, report.paths.server_key
            ca_certfile = report.paths.ca_cert
    scheme = "https" if certfile else "http"
    token = load_or_create_token(state_dir, rotate=args.new_token)
    server = ServerConfig(
        host=args.host,
        port=args.port,
        tls_certfile=Path(certfile) if certfile else None,
        tls_keyfile=Path(keyfile) if keyfile else None,
        tls_ca_certfile=ca_certfile,
        pairing_token=token,
        require_token=args.require_token or not loopback,
        public_urls=public_urls(args.host, args.port, scheme, names),
        max_guests=max_guests,
    )
    return server, report


def _with_bound_address(names: LocalNames, host: str) -> LocalNames:
    """Make sure a specific bind address is in the certificate, even if not on an interface."""
    try:
        bound = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return names
    if bound.is_unspecified or bound.is_loopback or bound in names.lan_addresses:
        return names
    return dataclasses.replace(names, lan_addresses=(*names.lan_addresses, bound))


def _llm_weights(server: LLMServerKind, weights: Path | None, profile_weights: Path) -> Path:
    """The managed LLM server's weights: ``--llm-weights`` if given, else the profile's.

    llama.cpp reads one GGUF file; vLLM reads a Hugging Face model directory (config.json and
    safetensors). The mismatch is caught here, with the fix, rather than minutes into a vLLM
    start-up that ends in a stack trace.
    """
    path = weights if weights is not None else profile_weights
    if server == "vllm" and not (path / "config.json").is_file():
        source = "--llm-weights" if weights is not None else "the profile's LLM weights"
        raise ValueError(
            f"vLLM needs a Hugging Face model directory with config.json and safetensors; "
            f"{source} ({path}) is not one. Pass --llm-weights DIR (e.g. the checkpoint "
            "`just test-vllm` converts from the cpu profile's GGUF, models/weights/vllm/)"
        )
    if server == "llamacpp" and not path.is_file():
        raise ValueError(f"llama.cpp needs a GGUF file; {path} is not a file")
    return path


def build_agent_config(
    args: argparse.Namespace, store: ModelStore, server_config: ServerConfig | None = None
) -> AgentConfig:
    """Resolve the profile's models (quick size check) and apply the flags.

    ``server_config`` comes from :func:`build_server_config`; without it, a loopback server.
    """
    paths = profile_paths(args.profile, store)
    profile = store.catalog.profile(args.profile)
    vllm = profile.vllm
    cuda = paths.device == "cuda"
    # On a Jetson the LLM runs in NVIDIA's vLLM container, reached over loopback.
    default_server: LLMServerKind = (
        "external" if profile.llm_runtime == "vllm-container" else "vllm" if cuda else "llamacpp"
    )
    server: LLMServerKind = default_server if args.llm == "auto" else args.llm
    llm_url = args.llm_url or (profile.llm_url if server == "external" else None)
    if server == "external" and not llm_url:
        raise ValueError("--llm external needs --llm-url http://HOST:PORT/v1")
    if args.llm_temperature < 0:
        raise ValueError(f"--llm-temperature must be 0 or more, got {args.llm_temperature:g}")
    llm_path = _llm_weights(server, getattr(args, "llm_weights", None), paths.llm_path)
    start_timeout = getattr(args, "llm_start_timeout", LLMConfig.start_timeout_secs)
    if start_timeout <= 0:
        raise ValueError(f"--llm-start-timeout must be more than 0, got {start_timeout:g}")
    server_args = (
        *(vllm.extra_args() if (vllm and server == "vllm") else ()),
        *getattr(args, "llm_server_arg", ()),
    )
    max_sessions = getattr(args, "max_sessions", None) or DEFAULT_MAX_SESSIONS.get(
        paths.device, DEFAULT_MAX_SESSIONS["cpu"]
    )
    if max_sessions < 1:
        raise ValueError("--max-sessions must be at least 1")
    if server_config is None:
        server_config = ServerConfig(host=args.host, port=args.port)
    # pipecat's stock configuration runs everything at one priority: the baseline stays stock.
    compute_nice = 0 if args.pipeline == "stock" else DEFAULT_COMPUTE_NICE
    return AgentConfig(
        profile=paths.profile,
        stt=STTConfig(
            model_dir=paths.stt_dir,
            device="cuda" if cuda else "cpu",
            compute_type=profile.stt_compute_type,
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
            base_url=llm_url,
            model=profile.served_model_name if args.llm_model == "local" else args.llm_model,
            model_path=llm_path,
            port=args.llm_port,
            request_timeout_secs=args.llm_timeout,
            temperature=args.llm_temperature,
            context_tokens=vllm.max_model_len if vllm else LLMConfig.context_tokens,
            extra_server_args=server_args,
            start_timeout_secs=start_timeout,
            cpu_nice=0 if args.pipeline == "stock" else DEFAULT_LLM_NICE,
        ),
        server=dataclasses.replace(server_config, max_sessions=max_sessions),
        noise_filter=not args.no_noise_filter,
        warmup=not args.no_warmup,
        variant=args.pipeline,
        history=history_config(args, getattr(args, "state_dir", None) or default_state_dir()),
        context_window=ContextWindowConfig(summarizer="digest" if server == "llamacpp" else "llm"),
        tools=tools_config(args, os.environ, small_model=server == "llamacpp"),
        compute_nice=compute_nice,
    )

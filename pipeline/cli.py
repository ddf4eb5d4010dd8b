"""The ``jetvoice`` console script: argument parsing and wiring only.

Configuration is built here, once, from flags and the profile; everything below receives typed
dataclasses.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from pathlib import Path

from pipeline.bench.cli import add_bench_parser, run_bench
from pipeline.config import LLMConfig
from pipeline.conversation.history_cli import add_history_arguments, add_history_parser, run_history
from pipeline.ops.network_audit import allow_lan_peer
from pipeline.ops.network_audit import install_from_environment as install_network_audit
from pipeline.tools.cli import add_tools_arguments

# `jetvoice serve` runs the event loop in asyncio debug mode with a 50 ms slow-callback log.
ASYNCIO_DEBUG_ENV = "JETVOICE_ASYNCIO_DEBUG"


def _add_serve_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the voice agent (web page + WebRTC signalling + models)",
        description="Start the models and the LLM server, then serve the talk page.",
    )
    serve.add_argument("--profile", default="cpu", help="model/device profile (default: cpu)")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1, this machine only)",
    )
    serve.add_argument("--port", type=int, default=8430, help="HTTP port (default: 8430)")
    serve.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="where model weights live (default: models/weights)",
    )
    serve.add_argument("--voice", default="af_heart", help="Kokoro voice (default: af_heart)")
    serve.add_argument(
        "--llm",
        choices=("auto", "llamacpp", "vllm", "external"),
        default="auto",
        help="LLM server: managed llama.cpp, managed vLLM, or an external URL "
        "(default: auto = the profile's choice)",
    )
    serve.add_argument(
        "--llm-url", default=None, help="base URL of an external OpenAI-compatible server (…/v1)"
    )
    serve.add_argument(
        "--llm-model", default="local", help="model name sent to the LLM server (default: local)"
    )
    serve.add_argument(
        "--llm-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the LLM's first token (and between tokens) before the bot "
        "apologises instead (default: 10)",
    )
    serve.add_argument(
        "--llm-temperature",
        type=float,
        default=LLMConfig.temperature,
        help="the LLM's sampling temperature; 0 always gives the most likely answer "
        f"(default: {LLMConfig.temperature:g})",
    )
    serve.add_argument(
        "--llm-port",
        type=int,
        default=0,
        help="port for the managed LLM server (default: free port)",
    )
    serve.add_argument(
        "--llm-weights",
        type=Path,
        default=None,
        help="weights for the managed LLM server instead of the profile's: a GGUF file for "
        "llama.cpp, a Hugging Face model directory (safetensors) for vLLM",
    )
    serve.add_argument(
        "--llm-server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for the managed LLM server (repeatable), "
        "e.g. --llm-server-arg=--chat-template=qwen3.jinja",
    )
    serve.add_argument(
        "--llm-start-timeout",
        type=float,
        default=LLMConfig.start_timeout_secs,
        help="seconds the managed LLM server may take to answer after it is started "
        f"(default: {LLMConfig.start_timeout_secs:g}; vLLM on a CPU needs several minutes)",
    )
    serve.add_argument(
        "--max-sessions",
        type=int,
        default=None,
        help="concurrent voice sessions; more are answered 503 (default: the profile's, 2 on cpu)",
    )
    serve.add_argument(
        "--max-guests",
        type=int,
        default=3,
        help="people who may join one conversation from other devices, besides whoever started "
        "it; 0 turns joining off (default: 3)",
    )
    serve.add_argument(
        "--no-warmup", action="store_true", help="skip the warm-up pass through every model"
    )
    serve.add_argument(
        "--no-noise-filter", action="store_true", help="do not run RNNoise on the microphone"
    )
    serve.add_argument(
        "--pipeline",
        choices=("tuned", "stock"),
        default="tuned",
        help="tuned = jetvoice's pipeline; stock = pipecat's stock services on the same models, "
        "for `jetvoice bench --baseline` (default: tuned)",
    )
    serve.add_argument(
        "--log-level", default="INFO", help="loguru level: DEBUG, INFO, WARNING (default: INFO)"
    )
    _add_access_arguments(serve)
    add_history_arguments(serve)
    add_tools_arguments(serve)


def _add_state_dir_argument(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the certificates and the pairing token live "
        "(default: $JETVOICE_STATE_DIR, else ~/.local/share/jetvoice)",
    )


def _add_access_arguments(serve: argparse.ArgumentParser) -> None:
    """HTTPS and pairing flags of ``serve``."""
    tls = serve.add_argument_group("HTTPS and pairing")
    tls.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with jetvoice's own certificate (made or renewed as needed, see "
        "`jetvoice certs`); required with any --host other than loopback",
    )
    tls.add_argument(
        "--certfile", type=Path, default=None, help="serve HTTPS with this certificate (PEM)"
    )
    tls.add_argument("--keyfile", type=Path, default=None, help="the private key of --certfile")
    tls.add_argument(
        "--require-token",
        action="store_true",
        help="require the pairing token on loopback too (always required on other addresses)",
    )
    tls.add_argument(
        "--new-token",
        action="store_true",
        help="make a new pairing token: every paired device must pair again",
    )
    _add_state_dir_argument(tls)


def _add_certs_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    certs = subparsers.add_parser(
        "certs",
        help="make the local CA and this machine's HTTPS certificate",
        description="Create a local certificate authority (once) and a server certificate "
        "signed by it for this machine's LAN addresses, <hostname>.local and localhost. "
        "Idempotent: the CA is kept; the server certificate is reissued when the addresses "
        "changed or it expires within 30 days.",
    )
    _add_state_dir_argument(certs)
    certs.add_argument(
        "--hostname", default=None, help="host name to certify (default: this machine's)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used by the docs and tests)."""
    from models.cli import add_models_parser

    parser = argparse.ArgumentParser(
        prog="jetvoice", description="A fully local voice agent for the home."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve_parser(subparsers)
    _add_certs_parser(subparsers)
    add_models_parser(subparsers)
    from pipeline.ops.doctor import add_doctor_parser

    add_doctor_parser(subparsers)
    add_bench_parser(subparsers)
    add_history_parser(subparsers)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from loguru import logger

    from models.store import ModelStore, ModelUnavailableError, default_models_dir
    from pipeline.profiles import build_agent_config, build_server_config
    from pipeline.server.banner import certs_summary, serve_banner
    from pipeline.server.certs import default_state_dir, server_ssl_context

    state_dir = args.state_dir or default_state_dir()
    store = ModelStore(args.models_dir or default_models_dir())
    try:
        # The bind check runs first: nothing is written, logged or loaded for a refused start.
        server, cert_report = build_server_config(args, state_dir)
        server = dataclasses.replace(server, asyncio_debug=os.environ.get(ASYNCIO_DEBUG_ENV) == "1")
        config = build_agent_config(args, store, server)
    except ModelUnavailableError as error:
        print(f"jetvoice: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"jetvoice: {error}", file=sys.stderr)
        return 2
    if config.tools.home_assistant and config.tools.home_assistant_url:
        # The one peer off loopback jetvoice talks to, and only when configured.
        allow_lan_peer(config.tools.home_assistant_url)
    logger.remove()
    logger.add(sys.stderr, level=args.log_level.upper())
    if cert_report is not None and cert_report.server_issued:
        print(certs_summary(cert_report), file=sys.stderr, flush=True)
    server = config.server
    # pipecat and the models' libraries load only for a start that passed the checks above.
    from pipeline.runtime import AgentRuntime
    from pipeline.server.app import create_app

    def on_ready() -> None:
        banner = serve_banner(server, state_dir=state_dir, show_token=sys.stdout.isatty())
        print(banner, flush=True)

    app = create_app(AgentRuntime(config), on_ready=on_ready)
    # A service manager (systemd, docker stop) sends SIGTERM: shut down exactly as on Ctrl-C.
    # uvicorn handles both signals while it serves, then re-raises the one it caught; with
    # Python's default SIGTERM action that would kill the process (exit -15) after the clean
    # shutdown, so SIGTERM gets SIGINT's handler, which uvicorn.run absorbs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"jetvoice: loading models for profile '{config.profile}'…", file=sys.stderr, flush=True)
    certfile, keyfile = server.tls_certfile, server.tls_keyfile
    uvicorn.run(
        app,
        host=server.host,
        port=server.port,
        log_level="warning",
        # The first GET of a pairing link carries ?token= in its URL: no access log at all.
        access_log=False,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        ssl_context_factory=(lambda _config, _default: server_ssl_context(certfile, keyfile))
        if certfile and keyfile
        else None,
    )
    print(f"jetvoice: stopped ({server.scheme}://{server.host}:{server.port})")
    return 0


def _certs(args: argparse.Namespace) -> int:
    from pipeline.server.banner import certs_summary
    from pipeline.server.certs import default_state_dir, ensure_certificates
    from pipeline.server.lan_addresses import local_names

    state_dir = args.state_dir or default_state_dir()
    report = ensure_certificates(state_dir, local_names(args.hostname))
    print(certs_summary(report))
    state_flag = f" --state-dir {state_dir}" if args.state_dir else ""
    print(f"Serve the LAN with: jetvoice serve --host 0.0.0.0 --tls{state_flag}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jetvoice`` console script.

    The telemetry and hub switches are already off: importing ``pipeline`` forced them.
    """
    install_network_audit()
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "certs":
        return _certs(args)
    if args.command == "bench":
        return run_bench(args)
    if args.command == "history":
        return run_history(args)
    if args.command == "doctor":
        from pipeline.ops.doctor import run_doctor

        return run_doctor(args)
    from models.cli import run_models

    return run_models(args)


if __name__ == "__main__":
    sys.exit(main())

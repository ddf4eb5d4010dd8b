"""The ``jetvoice`` console script: argument parsing and wiring only.

Configuration is built here, once, from flags and the profile; everything below receives typed
dataclasses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.offline import enforce_offline_environment


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
        "--llm-port",
        type=int,
        default=0,
        help="port for the managed LLM server (default: free port)",
    )
    serve.add_argument(
        "--max-sessions", type=int, default=2, help="concurrent voice sessions (default: 2)"
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


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used by the docs and tests)."""
    from models.cli import add_models_parser

    parser = argparse.ArgumentParser(
        prog="jetvoice", description="A fully local voice agent for the home."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve_parser(subparsers)
    add_models_parser(subparsers)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from loguru import logger

    from models.store import ModelStore, ModelUnavailableError, default_models_dir
    from pipeline.profiles import build_agent_config
    from pipeline.runtime import AgentRuntime
    from pipeline.server import create_app

    logger.remove()
    logger.add(sys.stderr, level=args.log_level.upper())
    store = ModelStore(args.models_dir or default_models_dir())
    try:
        config = build_agent_config(args, store)
    except ModelUnavailableError as error:
        print(f"jetvoice: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"jetvoice: {error}", file=sys.stderr)
        return 2
    app = create_app(AgentRuntime(config))
    scheme = "https" if config.server.tls_certfile else "http"
    print(f"jetvoice: loading models for profile '{config.profile}'…", file=sys.stderr, flush=True)
    uvicorn.run(
        app,
        host=config.server.host,
        port=config.server.port,
        log_level="warning",
        ssl_certfile=str(config.server.tls_certfile) if config.server.tls_certfile else None,
        ssl_keyfile=str(config.server.tls_keyfile) if config.server.tls_keyfile else None,
    )
    print(f"jetvoice: stopped ({scheme}://{config.server.host}:{config.server.port})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jetvoice`` console script."""
    enforce_offline_environment()
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    from models.cli import run_models

    return run_models(args)


if __name__ == "__main__":
    sys.exit(main())

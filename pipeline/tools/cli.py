"""The tool flags of ``jetvoice serve``: flags and the environment to one ``ToolsConfig``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from pipeline.config import DEFAULT_TOOLS, ToolName, ToolsConfig
from pipeline.tools.home_assistant import check_url

# A token on the command line would show in `ps` and shell history: it comes from the
# environment (a systemd EnvironmentFile, for instance).
HOME_ASSISTANT_TOKEN_ENV = "JETVOICE_HOME_ASSISTANT_TOKEN"


def add_tools_arguments(serve: argparse.ArgumentParser) -> None:
    """The tool flags of ``serve``."""
    group = serve.add_argument_group("tools (function calling)")
    group.add_argument(
        "--tools",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="offer the LLM the local tools: time and date, timers and reminders, calculator, "
        "unit conversion (default: on, except with the managed llama.cpp server, whose small "
        "model does not call them once a conversation has begun and would pay ~630 more "
        "prompt tokens a turn)",
    )
    group.add_argument(
        "--tool-timeout",
        type=float,
        default=ToolsConfig.timeout_secs,
        metavar="SECS",
        help="longest one tool call may run before the bot apologises (default: 6)",
    )
    group.add_argument(
        "--tool-answers",
        choices=("auto", "model", "tool"),
        default="auto",
        help="who words the answer after a tool ran: the model (a second LLM request with the "
        "result), or the tool's own sentence, spoken at once (for small models, which tend to "
        "call the tool again instead of answering); auto = tool on the managed llama.cpp "
        "server, model otherwise (default: auto)",
    )
    group.add_argument(
        "--home-assistant-url",
        default=None,
        metavar="URL",
        help="Home Assistant on the LAN (http://homeassistant.local:8123) to control devices "
        f"through; the access token comes from ${HOME_ASSISTANT_TOKEN_ENV} (default: off)",
    )


def tools_config(
    args: argparse.Namespace, environ: Mapping[str, str], *, small_model: bool = False
) -> ToolsConfig:
    """The tool settings from ``serve``'s flags and ``environ``; ``small_model`` (the managed
    llama.cpp server) makes ``--tool-answers auto`` speak the tools' own sentences.

    Raises:
        ValueError: a non-positive timeout, a Home Assistant URL that is not http(s) on the LAN,
            or one without its token.
    """
    timeout = getattr(args, "tool_timeout", ToolsConfig.timeout_secs)
    if not timeout > 0:
        raise ValueError(f"--tool-timeout must be positive, got {timeout}")
    url = getattr(args, "home_assistant_url", None)
    token = environ.get(HOME_ASSISTANT_TOKEN_ENV, "").strip() or None
    wanted = getattr(args, "tools", None)
    offered = (not small_model) if wanted is None else bool(wanted)
    enabled: tuple[ToolName, ...] = DEFAULT_TOOLS if offered else ()
    if url:
        url = check_url(url)
        if token is None:
            raise ValueError(
                f"--home-assistant-url needs the access token in ${HOME_ASSISTANT_TOKEN_ENV}"
            )
        enabled = (*enabled, "home_assistant")
    answers = getattr(args, "tool_answers", "auto")
    return ToolsConfig(
        enabled=enabled,
        timeout_secs=timeout,
        speak_results=answers == "tool" or (answers == "auto" and small_model),
        home_assistant_url=url or None,
        home_assistant_token=token if url else None,
    )

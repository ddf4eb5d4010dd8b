"""``jetvoice history`` and the history flags of ``jetvoice serve``: flags and printing only."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pipeline.config import HistoryConfig
from pipeline.conversation.store import DB_FILENAME, ConversationStore, TurnRecord


def add_history_arguments(serve: argparse.ArgumentParser) -> None:
    """The conversation-history flags of ``serve``."""
    group = serve.add_argument_group("conversation history")
    group.add_argument(
        "--history",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"keep every conversation in {DB_FILENAME} in the state directory; "
        "--no-history stores nothing at all (default: on)",
    )
    group.add_argument(
        "--history-retention-days",
        type=float,
        default=HistoryConfig.retention_days,
        metavar="N",
        help="delete conversations older than N days, at start-up and daily (default: 30)",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="start each new session with the last conversation's turns in the context",
    )


def history_config(args: argparse.Namespace, state_dir: Path) -> HistoryConfig:
    """The history settings from ``serve``'s flags.

    Raises:
        ValueError: a non-positive retention, or --resume without the history.
    """
    enabled = getattr(args, "history", True)
    retention = getattr(args, "history_retention_days", HistoryConfig.retention_days)
    resume = getattr(args, "resume", False)
    if retention <= 0:
        raise ValueError(f"--history-retention-days must be positive, got {retention}")
    if resume and not enabled:
        raise ValueError("--resume needs the history; drop --no-history")
    return HistoryConfig(
        enabled=enabled,
        path=state_dir / DB_FILENAME,
        retention_days=retention,
        resume=resume,
    )


def add_history_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``history`` subcommand to the ``jetvoice`` parser."""
    history = subparsers.add_parser(
        "history",
        help="list, show or delete stored conversations",
        description="The conversations `jetvoice serve` kept in the state directory.",
    )
    history.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the history lives (default: $JETVOICE_STATE_DIR, else ~/.local/share/jetvoice)",
    )
    actions = history.add_subparsers(dest="history_action", metavar="ACTION")
    listing = actions.add_parser("list", help="conversations, newest first (the default)")
    listing.add_argument("--limit", type=int, default=20, help="at most N (default: 20)")
    show = actions.add_parser("show", help="one conversation's turns with their latencies")
    show.add_argument("id", help="conversation id (or a unique prefix)")
    delete = actions.add_parser("delete", help="delete one conversation")
    delete.add_argument("id", help="conversation id (or a unique prefix)")
    actions.add_parser("clear", help="delete every conversation")


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _latency_line(turn: TurnRecord) -> str:
    data = turn.latency or {}
    parts = [f"total {data['total_ms']:.0f} ms"] if data.get("total_ms") is not None else []
    for item in data.get("contributions") or ():
        parts.append(f"{item.get('label') or item.get('key')} {item.get('ms', 0):.0f}")
    return "latency: " + ", ".join(parts) if parts else "latency: -"


def run_history(args: argparse.Namespace) -> int:
    """Run ``jetvoice history``; 1 when the asked-for conversation does not exist."""
    from pipeline.server.certs import default_state_dir

    path = (args.state_dir or default_state_dir()) / DB_FILENAME
    action = args.history_action or "list"
    if not path.exists():
        print(f"no conversation history at {path}")
        return 0 if action in ("list", "clear") else 1
    store = ConversationStore(path)
    try:
        if action == "list":
            conversations = store.conversations(args.limit if "limit" in args else 20)
            if not conversations:
                print("no conversations")
            for c in conversations:
                print(
                    f"{c.id}  {_when(c.started)}  ended {_when(c.ended)}  "
                    f"{c.turns} turns  {c.profile}"
                )
            return 0
        if action == "clear":
            print(f"deleted {store.clear()} conversations")
            return 0
        try:
            conversation = store.find(args.id)
        except KeyError as error:
            print(f"jetvoice history: {error.args[0]}")
            return 1
        if action == "delete":
            store.delete(conversation.id)
            print(f"deleted {conversation.id}")
            return 0
        print(
            f"conversation {conversation.id}  started {_when(conversation.started)}  "
            f"ended {_when(conversation.ended)}  profile {conversation.profile}"
        )
        for turn in store.turns(conversation.id):
            print(f"\n#{turn.index}  {_when(turn.started)}")
            print(f"  user: {turn.user_text}")
            marker = " (interrupted)" if turn.interrupted else ""
            print(f"  bot:  {turn.bot_text}{marker}")
            print(f"  {_latency_line(turn)}")
            if turn.error_stage:
                print(f"  error ({turn.error_stage}): {turn.error_message}")
        return 0
    finally:
        store.close()

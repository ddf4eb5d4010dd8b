"""The conversation history: every session and turn, in one SQLite file in the state directory.

Each turn is committed on its own as soon as the bot's answer is complete (or the turn failed),
in WAL mode, so a crash mid-turn loses at most that turn. :class:`ConversationStore` is the
blocking API (the ``jetvoice history`` command, tests); :class:`ConversationWriter` wraps it for
the server, running every statement on one dedicated thread so no disk I/O touches the event
loop and writes keep their order.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

DB_FILENAME = "conversations.sqlite3"
_DAY_SECS = 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    profile TEXT NOT NULL DEFAULT '',
    client TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    started REAL NOT NULL,
    ended REAL NOT NULL,
    user_text TEXT NOT NULL DEFAULT '',
    bot_text TEXT NOT NULL DEFAULT '',
    interrupted INTEGER NOT NULL DEFAULT 0,
    latency_json TEXT,
    error_stage TEXT,
    error_message TEXT,
    PRIMARY KEY (conversation_id, idx)
);
CREATE INDEX IF NOT EXISTS conversations_started ON conversations(started);
"""

T = TypeVar("T")


@dataclass(frozen=True)
class Conversation:
    """One voice session."""

    id: str
    started: float
    ended: float | None = None
    profile: str = ""
    client: str = ""
    turns: int = 0


@dataclass(frozen=True)
class TurnRecord:
    """One user turn and the bot's answer (what was actually spoken, if interrupted)."""

    conversation_id: str
    index: int
    started: float
    ended: float
    user_text: str = ""
    bot_text: str = ""
    interrupted: bool = False
    # The per-turn ``latency`` message's data (timeline, contributions, total).
    latency: dict[str, Any] | None = field(default=None, compare=False)
    error_stage: str | None = None
    error_message: str | None = None


class ConversationStore:
    """Blocking access to the history database; one connection, used from one thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db: sqlite3.Connection | None = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed turn survives a process crash; only a power loss can
        # take back the last few commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection (raises once closed)."""
        if self._db is None:
            raise RuntimeError("the conversation store is closed")
        return self._db

    def journal_mode(self) -> str:
        """SQLite's journal mode (``wal``)."""
        return str(self.db.execute("PRAGMA journal_mode").fetchone()[0])

    def start_conversation(
        self, conversation_id: str, *, started: float, profile: str = "", client: str = ""
    ) -> None:
        """Record a new session."""
        self.db.execute(
            "INSERT OR IGNORE INTO conversations (id, started, profile, client) VALUES (?,?,?,?)",
            (conversation_id, started, profile, client),
        )

    def end_conversation(self, conversation_id: str, *, ended: float) -> None:
        """Mark a session as ended."""
        self.db.execute("UPDATE conversations SET ended=? WHERE id=?", (ended, conversation_id))

    def add_turn(self, turn: TurnRecord) -> None:
        """Commit one turn (autocommit: one transaction per turn)."""
        self.db.execute(
            "INSERT OR REPLACE INTO turns (conversation_id, idx, started, ended, user_text, "
            "bot_text, interrupted, latency_json, error_stage, error_message) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                turn.conversation_id,
                turn.index,
                turn.started,
                turn.ended,
                turn.user_text,
                turn.bot_text,
                int(turn.interrupted),
                json.dumps(turn.latency) if turn.latency is not None else None,
                turn.error_stage,
                turn.error_message,
            ),
        )

    def conversations(self, limit: int | None = None) -> list[Conversation]:
        """Sessions, newest first, with their turn counts."""
        rows = self.db.execute(
            "SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) AS n "
            "FROM conversations c ORDER BY c.started DESC LIMIT ?",
            (-1 if limit is None else limit,),
        ).fetchall()
        return [_conversation(row) for row in rows]

    def find(self, id_or_prefix: str) -> Conversation:
        """The session with this id, or the only one whose id starts with it.

        Raises:
            KeyError: none, or more than one, matches.
        """
        rows = self.db.execute(
            "SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) AS n "
            "FROM conversations c WHERE c.id = ? OR c.id LIKE ? ESCAPE '\\' "
            "ORDER BY c.id = ? DESC",
            (id_or_prefix, _like_prefix(id_or_prefix), id_or_prefix),
        ).fetchall()
        if not rows:
            raise KeyError(f"no conversation {id_or_prefix!r}")
        if len(rows) > 1 and rows[0]["id"] != id_or_prefix:
            raise KeyError(f"{id_or_prefix!r} matches {len(rows)} conversations; give more of it")
        return _conversation(rows[0])

    def turns(self, conversation_id: str) -> list[TurnRecord]:
        """A session's turns in order."""
        rows = self.db.execute(
            "SELECT * FROM turns WHERE conversation_id=? ORDER BY idx", (conversation_id,)
        ).fetchall()
        return [_turn(row) for row in rows]

    def last_conversation(self, *, exclude: str | None = None) -> Conversation | None:
        """The most recent session that has at least one turn."""
        row = self.db.execute(
            "SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) AS n "
            "FROM conversations c WHERE n > 0 AND c.id IS NOT ? ORDER BY c.started DESC LIMIT 1",
            (exclude,),
        ).fetchone()
        return _conversation(row) if row is not None else None

    def resume_messages(
        self, max_turns: int, *, exclude: str | None = None
    ) -> list[dict[str, str]]:
        """The last session's final ``max_turns`` answered turns as chat messages."""
        last = self.last_conversation(exclude=exclude)
        if last is None:
            return []
        answered = [t for t in self.turns(last.id) if t.user_text and t.bot_text]
        messages: list[dict[str, str]] = []
        for turn in answered[-max_turns:] if max_turns > 0 else []:
            messages.append({"role": "user", "content": turn.user_text})
            messages.append({"role": "assistant", "content": turn.bot_text})
        return messages

    def delete(self, conversation_id: str) -> bool:
        """Remove one session and its turns; whether it existed."""
        cursor = self.db.execute("DELETE FROM conversations WHERE id=?", (conversation_id,))
        return cursor.rowcount > 0

    def clear(self) -> int:
        """Remove every session; how many there were."""
        return self.db.execute("DELETE FROM conversations").rowcount

    def prune(self, retention_days: float, *, now: float | None = None) -> int:
        """Remove sessions that started more than ``retention_days`` ago; how many."""
        cutoff = (time.time() if now is None else now) - retention_days * _DAY_SECS
        return self.db.execute("DELETE FROM conversations WHERE started < ?", (cutoff,)).rowcount

    def close(self) -> None:
        """Checkpoint and close. Idempotent."""
        db, self._db = self._db, None
        if db is not None:
            db.close()


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        started=row["started"],
        ended=row["ended"],
        profile=row["profile"],
        client=row["client"],
        turns=row["n"],
    )


def _turn(row: sqlite3.Row) -> TurnRecord:
    return TurnRecord(
        conversation_id=row["conversation_id"],
        index=row["idx"],
        started=row["started"],
        ended=row["ended"],
        user_text=row["user_text"],
        bot_text=row["bot_text"],
        interrupted=bool(row["interrupted"]),
        latency=json.loads(row["latency_json"]) if row["latency_json"] else None,
        error_stage=row["error_stage"],
        error_message=row["error_message"],
    )


class ConversationWriter:
    """The server's handle on the store: every call runs on one writer thread.

    ``open`` creates the file and prunes old sessions; ``close`` is idempotent and owned by the
    runtime.
    """

    def __init__(self, path: Path, *, retention_days: float) -> None:
        self.path = path
        self.retention_days = retention_days
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history")
        self._store: ConversationStore | None = None
        self._closed = False

    async def _call(self, function: Callable[[ConversationStore], T]) -> T:
        if self._closed:
            raise RuntimeError("the conversation history is closed")
        store = self._store
        if store is None:
            raise RuntimeError("the conversation history is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, store)

    async def open(self) -> int:
        """Open (creating) the database and prune it; how many old sessions were removed."""
        loop = asyncio.get_running_loop()
        self._store = await loop.run_in_executor(self._executor, ConversationStore, self.path)
        return await self.prune()

    async def prune(self) -> int:
        """Apply the retention period now."""
        return await self._call(lambda store: store.prune(self.retention_days))

    async def start_conversation(self, conversation_id: str, *, profile: str, client: str) -> None:
        """Record a new session, started now."""
        started = time.time()
        await self._call(
            lambda store: store.start_conversation(
                conversation_id, started=started, profile=profile, client=client
            )
        )

    async def end_conversation(self, conversation_id: str) -> None:
        """Mark a session as ended now."""
        ended = time.time()
        await self._call(lambda store: store.end_conversation(conversation_id, ended=ended))

    async def add_turn(self, turn: TurnRecord) -> None:
        """Commit one turn."""
        await self._call(lambda store: store.add_turn(turn))

    async def resume_messages(self, max_turns: int, *, exclude: str) -> list[dict[str, str]]:
        """The previous session's last turns as chat messages."""
        return await self._call(lambda store: store.resume_messages(max_turns, exclude=exclude))

    async def close(self) -> None:
        """Close the database, then the writer thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        store, self._store = self._store, None
        if store is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, store.close)
        self._executor.shutdown(wait=False)

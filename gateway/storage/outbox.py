"""The durable outbox: every event is on disk, numbered, before anyone is told of it.

State that must agree with the events sent (alarm states) is written in the same
transaction as those events: after ``kill -9`` the gateway resumes with exactly the state
whose events it had stored, so it neither repeats nor forgets a transition.

An event gets its id and its per-gateway sequence number here, inside the SQLite
transaction that stores it, so the numbering is the durable order. It leaves only when
the uplink reports the broker's acknowledgement. SQLite runs in WAL mode with
``synchronous=FULL``: a committed event survives ``kill -9`` and a power cut alike.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.core.events import Event

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq       INTEGER PRIMARY KEY,
    event_id  TEXT NOT NULL UNIQUE,
    category  TEXT NOT NULL,
    payload   BLOB NOT NULL,
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('last_seq', 0);
CREATE TABLE IF NOT EXISTS state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    event_id: str
    category: str
    payload: bytes


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Outbox:
    def __init__(self, connection: sqlite3.Connection, source: dict[str, str]) -> None:
        self._db = connection
        self._source = dict(source)
        self._listeners: list[Callable[[], None]] = []
        (self._last_seq,) = self._db.execute(
            "SELECT value FROM counters WHERE name = 'last_seq'"
        ).fetchone()

    @classmethod
    @contextmanager
    def open(cls, path: Path, source: dict[str, str]) -> Iterator[Outbox]:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version not in (0, _SCHEMA_VERSION):
                raise RuntimeError(f"{path}: outbox schema {version} is newer than this gateway")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            yield cls(db, source)
        finally:
            db.close()

    @property
    def last_seq(self) -> int:
        """The highest sequence number ever assigned, acknowledged or not."""
        return int(self._last_seq)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """``listener`` is called after each append, e.g. to wake the uplink."""
        self._listeners.append(listener)

    def emit(
        self, events: list[Event], state: Mapping[str, Any] | None = None
    ) -> list[StoredEvent]:
        """Store ``events`` and, atomically with them, ``state`` (key -> JSON value)."""
        if not events and not state:
            return []
        stored: list[StoredEvent] = []
        seq = self._last_seq
        for event in events:
            seq += 1
            event_id = str(uuid.uuid4())
            body = {
                "event_id": event_id,
                "seq": seq,
                "type": event.type,
                "ts": iso_utc(event.ts),
                **self._source,
                **event.body,
            }
            payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
            stored.append(StoredEvent(seq, event_id, event.category, payload))
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "INSERT INTO events (seq, event_id, category, payload, stored_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(s.seq, s.event_id, s.category, s.payload, now) for s in stored],
            )
            self._db.execute("UPDATE counters SET value = ? WHERE name = 'last_seq'", (seq,))
            if state:
                self._db.executemany(
                    "INSERT INTO state (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [(k, json.dumps(v, separators=(",", ":"))) for k, v in state.items()],
                )
        self._last_seq = seq
        if stored:
            for listener in self._listeners:
                listener()
        return stored

    def load_state(self, prefix: str = "") -> dict[str, Any]:
        rows = self._db.execute(
            "SELECT key, value FROM state WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
        ).fetchall()
        return {key[len(prefix) :]: json.loads(value) for key, value in rows}

    def pending(self, after_seq: int = 0, limit: int = 1000) -> list[StoredEvent]:
        rows = self._db.execute(
            "SELECT seq, event_id, category, payload FROM events WHERE seq > ?"
            " ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [StoredEvent(int(r[0]), r[1], r[2], bytes(r[3])) for r in rows]

    def ack(self, seqs: Iterable[int]) -> None:
        with self._transaction():
            self._db.executemany("DELETE FROM events WHERE seq = ?", [(s,) for s in seqs])

    def count(self) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM events").fetchone()
        return int(n)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

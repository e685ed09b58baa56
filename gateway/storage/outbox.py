"""The durable outbox: every event is on disk, numbered, before anyone is told of it.

An event gets its id and its per-gateway sequence number here, inside the SQLite
transaction that stores it, so the numbering is the durable order. It leaves only when
the uplink reports the broker's acknowledgement. SQLite runs in WAL mode, and a
transaction that stores events waits for the disk (``synchronous=FULL``): a committed
event survives ``kill -9`` and a power cut alike. Telemetry and the deletion of
acknowledged rows are committed without that wait (``NORMAL``): they survive a crash of
the process; a power cut may lose the last moments of telemetry, or send an acknowledged
event once more (which the receiver drops by its sequence number). That wait is most of
what a row costs, and telemetry is most of the rows.

State that must agree with the events sent (alarm states) is written in the same
transaction as those events: after ``kill -9`` the gateway resumes with exactly the state
whose events it had stored, so it neither repeats nor forgets a transition.

Telemetry shares the queue (one order on the wire) but not the event numbering: under the
disk quota the oldest telemetry is dropped first, and that must not look like a lost
event to the receiver. Events are never dropped.
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

from vocab.events import Event

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    row       INTEGER PRIMARY KEY AUTOINCREMENT,
    seq       INTEGER UNIQUE,
    channel   TEXT NOT NULL,
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
TELEMETRY = "telemetry/"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One queued message: ``channel`` is the topic below the gateway's base topic."""

    row: int
    seq: int | None
    channel: str
    payload: bytes
    stored_at: float = 0.0

    @property
    def is_telemetry(self) -> bool:
        return self.channel.startswith(TELEMETRY)


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


class Outbox:
    def __init__(self, connection: sqlite3.Connection, source: dict[str, str]) -> None:
        self._db = connection
        self._source = dict(source)
        self._listeners: list[tuple[Callable[[], None], bool]] = []
        self._synchronous = "FULL"
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

    def subscribe(self, listener: Callable[[], None], *, events_only: bool = False) -> None:
        """``listener`` is called after each append (or each append of events only)."""
        self._listeners.append((listener, events_only))

    def emit(
        self, events: list[Event], state: Mapping[str, Any] | None = None
    ) -> list[StoredEvent]:
        """Store ``events`` and, atomically with them, ``state`` (key -> JSON value)."""
        if not events and not state:
            return []
        rows: list[tuple[int, str, bytes]] = []
        seq = self._last_seq
        for event in events:
            seq += 1
            body = {
                "event_id": str(uuid.uuid4()),
                "seq": seq,
                "type": event.type,
                "ts": iso_utc(event.ts),
                **self._source,
                **event.body,
            }
            rows.append((seq, f"events/{event.category}", _json(body)))
        now = time.time()
        with self._transaction():
            stored = self._insert(rows, now)
            self._db.execute("UPDATE counters SET value = ? WHERE name = 'last_seq'", (seq,))
            if state:
                self._db.executemany(
                    "INSERT INTO state (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [(k, json.dumps(v, separators=(",", ":"))) for k, v in state.items()],
                )
        self._last_seq = seq
        self._notify(stored, events=True)
        return stored

    def emit_telemetry(self, messages: Mapping[str, Mapping[str, Any]]) -> list[StoredEvent]:
        """Queue telemetry, ``{device: body}``; it carries no event sequence number."""
        now = time.time()
        with self._transaction(durable=False):
            stored = [
                self._insert_one(None, f"{TELEMETRY}{device}", _json({**self._source, **body}), now)
                for device, body in messages.items()
            ]
        self._notify(stored, events=False)
        return stored

    def pending(self, after_row: int = 0, limit: int = 1000) -> list[StoredEvent]:
        rows = self._db.execute(
            "SELECT row, seq, channel, payload, stored_at FROM outbox WHERE row > ?"
            " ORDER BY row LIMIT ?",
            (after_row, limit),
        ).fetchall()
        return [StoredEvent(int(r[0]), r[1], r[2], bytes(r[3]), float(r[4])) for r in rows]

    def ack(self, rows: Iterable[int]) -> None:
        with self._transaction(durable=False):
            self._db.executemany("DELETE FROM outbox WHERE row = ?", [(r,) for r in rows])

    def count(self) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(n)

    def size(self) -> int:
        """Bytes of queued payload, the measure the disk quota is kept in."""
        (n,) = self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetchone()
        return int(n)

    def enforce_quota(self, max_bytes: int) -> int:
        """Drop the oldest telemetry until the queue fits; returns how many were dropped."""
        excess = self.size() - max_bytes
        dropped = 0
        while excess > 0:
            rows = self._db.execute(
                "SELECT row, LENGTH(payload) FROM outbox WHERE seq IS NULL ORDER BY row LIMIT 500"
            ).fetchall()
            if not rows:
                break  # only events left: they are kept whatever the quota says
            victims = []
            for row, length in rows:
                victims.append(row)
                excess -= length
                if excess <= 0:
                    break
            self.ack(victims)
            dropped += len(victims)
        return dropped

    def load_state(self, prefix: str = "") -> dict[str, Any]:
        rows = self._db.execute(
            "SELECT key, value FROM state WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
        ).fetchall()
        return {key[len(prefix) :]: json.loads(value) for key, value in rows}

    def _insert(self, rows: list[tuple[int, str, bytes]], now: float) -> list[StoredEvent]:
        return [self._insert_one(seq, channel, payload, now) for seq, channel, payload in rows]

    def _insert_one(self, seq: int | None, channel: str, payload: bytes, now: float) -> StoredEvent:
        cursor = self._db.execute(
            "INSERT INTO outbox (seq, channel, payload, stored_at) VALUES (?, ?, ?, ?)",
            (seq, channel, payload, now),
        )
        assert cursor.lastrowid is not None
        return StoredEvent(cursor.lastrowid, seq, channel, payload, now)

    def _notify(self, stored: list[StoredEvent], events: bool) -> None:
        if stored:
            for listener, events_only in self._listeners:
                if events or not events_only:
                    listener()

    @contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[None]:
        synchronous = "FULL" if durable else "NORMAL"
        if synchronous != self._synchronous:  # a pragma that cannot change inside a transaction
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._synchronous = synchronous
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

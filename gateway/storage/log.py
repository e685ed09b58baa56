"""The durable event log: every event is on disk, numbered, before any sink is told of it.

An event gets its id and its per-gateway sequence number here, inside the SQLite
transaction that stores it, so the numbering is the durable order. What is stored is the
event record of the contract (``docs/events.md``: ``event_id``, ``seq``, ``type``, ``ts``,
``site``, ``gateway`` and the body) as one JSON object; how it travels (an MQTT topic, a
line in a file, a point in a time series) is each sink's business.

Each sink reads the log through a ``Cursor`` of its own, acknowledges what it delivered,
and its position is kept on disk. A row leaves the disk when every sink that wants its
kind (``event`` or ``telemetry``) has it, or when the quota drops it (telemetry only,
oldest first). A slow or dead sink holds back nobody else: it only keeps rows on disk.

SQLite runs in WAL mode, and a transaction that stores events waits for the disk
(``synchronous=FULL``): a committed event survives ``kill -9`` and a power cut alike.
Telemetry and cursor moves are committed without that wait (``NORMAL``): they survive a
crash of the process; a power cut may lose the last moments of telemetry, or make a sink
deliver an event once more (which the receiver drops by its sequence number).

State that must agree with the events sent (alarm states, the matrix) is written in the
same transaction as those events: after ``kill -9`` the gateway resumes with exactly the
state whose events it had stored, so it neither repeats nor forgets a transition.

Telemetry shares the log (one order for every sink) but not the event numbering: under
the quota the oldest telemetry is dropped first, and that must not look like a lost event
to a receiver. Events are never dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from vocab.events import Event

_logger = logging.getLogger(__name__)

Kind = Literal["event", "telemetry"]
EVENTS: frozenset[Kind] = frozenset({"event"})
EVERYTHING: frozenset[Kind] = frozenset({"event", "telemetry"})

_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    row       INTEGER PRIMARY KEY AUTOINCREMENT,
    seq       INTEGER UNIQUE,
    kind      TEXT NOT NULL,
    type      TEXT NOT NULL,
    source    TEXT NOT NULL,
    record    BLOB NOT NULL,
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    sink TEXT PRIMARY KEY,
    row  INTEGER NOT NULL
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
# Version 1 kept MQTT channels and wire payloads in an ``outbox`` table and deleted a row
# on the broker's acknowledgement; its rows are what no sink had yet.
_FROM_V1 = """
INSERT INTO log (row, seq, kind, type, source, record, stored_at)
SELECT row, seq,
       CASE WHEN seq IS NULL THEN 'telemetry' ELSE 'event' END,
       CASE WHEN seq IS NULL THEN 'telemetry' ELSE json_extract(payload, '$.type') END,
       CASE WHEN seq IS NULL THEN substr(channel, 11) ELSE '' END,
       CAST(payload AS BLOB), stored_at
FROM outbox;
DROP TABLE outbox;
"""


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One row of the log. ``record`` is the JSON object as the contract defines it;
    ``source`` is the device of a telemetry record and empty for events."""

    row: int
    seq: int | None
    kind: Kind
    type: str
    source: str
    record: bytes
    stored_at: float = 0.0

    @property
    def is_telemetry(self) -> bool:
        return self.kind == "telemetry"

    @property
    def category(self) -> str:
        """An event's category, the part of its type before the dot: ``alarm``, ..."""
        return self.type.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class SinkLag:
    """A sink's backlog: rows it wants and has not acknowledged, and the age in seconds
    of the oldest of them (0 when there is none)."""

    backlog: int
    oldest_age: float


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


class EventLog:
    """Open with ``EventLog.open(path, source)``; ``source`` (site, gateway) goes into every
    record. Sinks take a ``cursor(name, kinds)`` each before the first ``emit``."""

    def __init__(self, connection: sqlite3.Connection, source: dict[str, str]) -> None:
        self._db = connection
        self._source = dict(source)
        self._listeners: list[tuple[Callable[[], None], bool]] = []
        self._cursors: dict[str, Cursor] = {}
        self._synchronous = "FULL"
        (self._last_seq,) = self._db.execute(
            "SELECT value FROM counters WHERE name = 'last_seq'"
        ).fetchone()

    @classmethod
    @contextmanager
    def open(cls, path: Path, source: dict[str, str]) -> Iterator[EventLog]:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version > _SCHEMA_VERSION:
                raise RuntimeError(f"{path}: log schema {version} is newer than this gateway")
            db.executescript(f"BEGIN; {_SCHEMA} {_FROM_V1 if version == 1 else ''} COMMIT;")
            db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            yield cls(db, source)
        finally:
            db.close()

    @property
    def last_seq(self) -> int:
        """The highest sequence number ever assigned, delivered or not."""
        return int(self._last_seq)

    # -- sinks -------------------------------------------------------------------------

    def cursor(self, sink: str, kinds: Collection[Kind] = EVERYTHING) -> Cursor:
        """The read position of ``sink``, kept on disk. A sink seen for the first time
        starts at the oldest row still on disk: whatever is stored is delivered to it."""
        if sink in self._cursors:
            raise ValueError(f"sink {sink!r} already has a cursor")
        found = self._db.execute("SELECT row FROM cursors WHERE sink = ?", (sink,)).fetchone()
        if found is None:
            start = 0
            self._db.execute("INSERT INTO cursors (sink, row) VALUES (?, ?)", (sink, start))
        else:
            (start,) = found
        cursor = Cursor(self, sink, frozenset(kinds), int(start))
        self._cursors[sink] = cursor
        return cursor

    def forget_other_sinks(self) -> list[str]:
        """Drop the positions of sinks that have no cursor in this run (a sink removed from
        the configuration), so that they hold no rows on disk; returns their names."""
        names = [r[0] for r in self._db.execute("SELECT sink FROM cursors").fetchall()]
        gone = [n for n in names if n not in self._cursors]
        if gone:
            self._db.executemany("DELETE FROM cursors WHERE sink = ?", [(n,) for n in gone])
            _logger.info("log: sinks no longer configured, positions dropped: %s", gone)
            self._trim()
        return gone

    def lag(self, sink: str) -> SinkLag:
        cursor = self._cursors[sink]
        kinds = sorted(cursor.kinds)
        marks = ",".join("?" * len(kinds))
        count, oldest = self._db.execute(
            f"SELECT COUNT(*), MIN(stored_at) FROM log WHERE row > ? AND kind IN ({marks})",
            (cursor.committed, *kinds),
        ).fetchone()
        return SinkLag(int(count), max(0.0, time.time() - oldest) if oldest else 0.0)

    def sinks(self) -> dict[str, SinkLag]:
        return {name: self.lag(name) for name in self._cursors}

    # -- writing -----------------------------------------------------------------------

    def subscribe(self, listener: Callable[[], None], *, events_only: bool = False) -> None:
        """``listener`` is called after each append (or each append of events only)."""
        self._listeners.append((listener, events_only))

    def emit(
        self, events: list[Event], state: Mapping[str, Any] | None = None
    ) -> list[StoredRecord]:
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
            rows.append((seq, event.type, _json(body)))
        now = time.time()
        with self._transaction():
            stored = [self._insert(s, "event", t, "", r, now) for s, t, r in rows]
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

    def emit_telemetry(self, messages: Mapping[str, Mapping[str, Any]]) -> list[StoredRecord]:
        """Store telemetry, ``{device: body}``; it carries no event sequence number, and is
        not stored at all when no sink wants it."""
        if not any("telemetry" in c.kinds for c in self._cursors.values()):
            return []
        now = time.time()
        with self._transaction(durable=False):
            stored = [
                self._insert(
                    None, "telemetry", "telemetry", device, _json({**self._source, **body}), now
                )
                for device, body in messages.items()
            ]
        self._notify(stored, events=False)
        return stored

    def load_state(self, prefix: str = "") -> dict[str, Any]:
        rows = self._db.execute(
            "SELECT key, value FROM state WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
        ).fetchall()
        return {key[len(prefix) :]: json.loads(value) for key, value in rows}

    # -- reading and trimming ------------------------------------------------------------

    def read(self, after_row: int, kinds: frozenset[Kind], limit: int) -> list[StoredRecord]:
        if kinds == EVERYTHING:
            query = (
                "SELECT row, seq, kind, type, source, record, stored_at FROM log"
                " WHERE row > ? ORDER BY row LIMIT ?"
            )
            args: tuple[Any, ...] = (after_row, limit)
        else:
            (kind,) = kinds
            query = (
                "SELECT row, seq, kind, type, source, record, stored_at FROM log"
                " WHERE row > ? AND kind = ? ORDER BY row LIMIT ?"
            )
            args = (after_row, kind, limit)
        return [
            StoredRecord(int(r[0]), r[1], r[2], r[3], r[4], bytes(r[5]), float(r[6]))
            for r in self._db.execute(query, args).fetchall()
        ]

    def count(self) -> int:
        """Rows on disk, whichever sink still wants them."""
        (n,) = self._db.execute("SELECT COUNT(*) FROM log").fetchone()
        return int(n)

    def size(self) -> int:
        """Bytes of stored records, the measure the disk quota is kept in."""
        (n,) = self._db.execute("SELECT COALESCE(SUM(LENGTH(record)), 0) FROM log").fetchone()
        return int(n)

    def enforce_quota(self, max_bytes: int) -> int:
        """Drop the oldest telemetry until the log fits; returns how many were dropped."""
        excess = self.size() - max_bytes
        dropped = 0
        while excess > 0:
            rows = self._db.execute(
                "SELECT row, LENGTH(record) FROM log WHERE kind = 'telemetry' ORDER BY row"
                " LIMIT 500"
            ).fetchall()
            if not rows:
                break  # only events left: they are kept whatever the quota says
            victims = []
            for row, length in rows:
                victims.append((row,))
                excess -= length
                if excess <= 0:
                    break
            with self._transaction(durable=False):
                self._db.executemany("DELETE FROM log WHERE row = ?", victims)
            dropped += len(victims)
        return dropped

    def _commit_cursor(self, sink: str, row: int) -> None:
        with self._transaction(durable=False):
            self._db.execute("UPDATE cursors SET row = ? WHERE sink = ?", (row, sink))
            self._trim()

    def _trim(self) -> None:
        """Delete the rows of each kind that every sink wanting that kind has."""
        for kind in EVERYTHING:
            wanting = [c.committed for c in self._cursors.values() if kind in c.kinds]
            upto = min(wanting) if wanting else None
            if upto is None:
                (upto,) = self._db.execute("SELECT COALESCE(MAX(row), 0) FROM log").fetchone()
            self._db.execute("DELETE FROM log WHERE kind = ? AND row <= ?", (kind, upto))

    def _insert(
        self, seq: int | None, kind: Kind, type_: str, source: str, record: bytes, now: float
    ) -> StoredRecord:
        cursor = self._db.execute(
            "INSERT INTO log (seq, kind, type, source, record, stored_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (seq, kind, type_, source, record, now),
        )
        assert cursor.lastrowid is not None
        return StoredRecord(cursor.lastrowid, seq, kind, type_, source, record, now)

    def _notify(self, stored: list[StoredRecord], events: bool) -> None:
        if not stored:
            return
        kind: Kind = "event" if events else "telemetry"
        for cursor in self._cursors.values():
            if kind in cursor.kinds:
                cursor.wake.set()
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


class Cursor:
    """One sink's way through the log.

    ``read`` hands out rows after the read position, which runs ahead of what is
    acknowledged so that a sink can keep many in flight. ``ack`` takes delivered rows in
    any order; the position kept on disk (``committed``) moves up to just below the oldest
    row still out, so after a restart a sink starts again at its first undelivered row.
    ``rewind`` offers rows again from a given one, e.g. after a refusal.
    """

    def __init__(self, log: EventLog, name: str, kinds: frozenset[Kind], start: int) -> None:
        self.name = name
        self.kinds = kinds
        self.wake = asyncio.Event()
        self._log = log
        self._position = start
        self._committed = start
        self._out: set[int] = set()  # rows handed out and not acknowledged

    @property
    def committed(self) -> int:
        """Every wanted row up to this one is delivered."""
        return self._committed

    @property
    def in_flight(self) -> int:
        return len(self._out)

    def read(self, limit: int) -> list[StoredRecord]:
        rows = self._log.read(self._position, self.kinds, limit)
        if rows:
            self._position = rows[-1].row
            self._out.update(r.row for r in rows)
        return rows

    def ack(self, rows: Iterable[int]) -> None:
        for row in rows:
            self._out.discard(row)
        upto = min(self._out) - 1 if self._out else self._position
        if upto > self._committed:
            self._committed = upto
            self._log._commit_cursor(self.name, upto)

    def rewind(self, row: int) -> None:
        """Read again from ``row`` on; rows already acknowledged after it come again."""
        self._position = min(self._position, row - 1)
        self.wake.set()

    async def wait(self) -> None:
        """Until something new is stored (or a rewind asks for a re-read)."""
        await self.wake.wait()
        self.wake.clear()

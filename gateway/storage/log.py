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

A disk that fills up, turns read-only or fails never stops the gateway: detection and
relays go on. Events (numbered as usual) and their state wait in memory, in order, and
telemetry is dropped; cursor moves are kept in memory. Every write tries the held events
first, and ``heal`` (called every few seconds) tries again, reopening the file if it could
not be opened at start-up; when the disk takes them, everything resumes. ``watch``
listeners hear when writing fails and when it works again (the gateway raises
``gateway.storage.fault``). A file that is not a database, or is damaged, is set aside as
``<name>.damaged-<time>`` (kept for recovery) and a new log is begun, numbering on from
the last sequence number that could be read from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from vocab.clock import steady
from vocab.events import Event

_logger = logging.getLogger(__name__)

StorageWatcher = Callable[[str | None], None]  # why writing fails, or None once it works

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

    def __init__(
        self,
        connection: sqlite3.Connection,
        source: dict[str, str],
        path: Path | None = None,
        fault: str | None = None,
        notice: str | None = None,
    ) -> None:
        self._db = connection
        self._source = dict(source)
        self._path = path
        self._listeners: list[tuple[Callable[[], None], bool]] = []
        self._watchers: list[StorageWatcher] = []
        self._cursors: dict[str, Cursor] = {}
        self._synchronous = "FULL"
        # Events and state the disk did not take yet, in order: (rows, state) per emit.
        self._held: list[tuple[list[tuple[int, str, bytes]], dict[str, Any]]] = []
        self._fault = fault  # why the file cannot be written; None while it can
        self._writable = fault is None
        self._notice = notice  # what went wrong at opening that was put right (set aside)
        (self._last_seq,) = self._db.execute(
            "SELECT value FROM counters WHERE name = 'last_seq'"
        ).fetchone()

    @classmethod
    @contextmanager
    def open(cls, path: Path, source: dict[str, str]) -> Iterator[EventLog]:
        """The log in ``path``; if the disk cannot take it now, a stand-in in memory that
        holds every write until ``heal`` can open the file (see the module's doc)."""
        notice = None
        try:
            try:
                db = _open_file(path)
            except sqlite3.OperationalError:
                raise  # a full or read-only disk: not the file's fault
            except sqlite3.DatabaseError as err:  # not a database, or damaged
                db, notice = _set_aside(path, err)
        except (sqlite3.OperationalError, OSError) as err:
            _logger.error(
                "event log %s cannot be opened for writing (%s): detection and relays run on;"
                " events wait in memory until the disk takes them",
                path,
                err,
            )
            log = cls(_stand_in(path), source, path, f"cannot open {path}: {err}")
        else:
            log = cls(db, source, path, notice=notice)
        try:
            yield log
        finally:
            log._db.close()

    @property
    def fault(self) -> str | None:
        """Why the log cannot be written now; None while it can."""
        return self._fault

    @property
    def held(self) -> int:
        """Events waiting in memory for the disk."""
        return sum(len(rows) for rows, _ in self._held)

    def watch(self, watcher: StorageWatcher) -> None:
        """``watcher(reason)`` when writing starts to fail, ``watcher(None)`` when it works
        again; called at once with the current state (a restart may find a healthy disk
        where the last run left an alarm). A damaged file set aside at opening is told as a
        fault that is already over, so that it stays shown until someone acknowledges it."""
        self._watchers.append(watcher)
        if self._notice is not None and self._fault is None:
            watcher(self._notice)
        watcher(self._fault)

    def heal(self) -> bool:
        """Try the disk again: reopen the file if need be, store what is held, move the
        cursors. True when the log is on disk and nothing waits in memory."""
        if not self._writable:
            assert self._path is not None
            try:
                db = _open_file(self._path)
            except (sqlite3.DatabaseError, OSError):
                return False
            stand_in, self._db = self._db, db
            stand_in.close()
            self._writable = True
            self._synchronous = "FULL"
            for cursor in self._cursors.values():  # nothing was read from the stand-in
                cursor.restart(self._register(cursor.name))
        self._notify(self._store_held(), events=True)
        if self._fault is not None and not self._held:
            self._write_cursors()
        return self._fault is None and not self._held

    def _write_cursors(self) -> None:
        """After a failure: every sink's position, then the trim it allows."""
        try:
            with self._transaction(durable=False):
                self._db.executemany(
                    "UPDATE cursors SET row = ? WHERE sink = ?",
                    [(c.committed, c.name) for c in self._cursors.values()],
                )
                self._trim()
        except sqlite3.Error as err:
            self._failed(err)
            return
        self._healed()

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
        cursor = Cursor(self, sink, frozenset(kinds), self._register(sink))
        self._cursors[sink] = cursor
        return cursor

    def _register(self, sink: str) -> int:
        found = self._db.execute("SELECT row FROM cursors WHERE sink = ?", (sink,)).fetchone()
        if found is not None:
            return int(found[0])
        if self._writable:
            try:
                self._db.execute("INSERT INTO cursors (sink, row) VALUES (?, ?)", (sink, 0))
            except sqlite3.Error as err:
                self._failed(err)
        return 0

    def forget_other_sinks(self) -> list[str]:
        """Drop the positions of sinks that have no cursor in this run (a sink removed from
        the configuration), so that they hold no rows on disk; returns their names."""
        names = [r[0] for r in self._db.execute("SELECT sink FROM cursors").fetchall()]
        gone = [n for n in names if n not in self._cursors]
        if gone and self._writable:
            try:
                with self._transaction(durable=False):
                    self._db.executemany("DELETE FROM cursors WHERE sink = ?", [(n,) for n in gone])
                    self._trim()
            except sqlite3.Error as err:
                self._failed(err)
                return []
            _logger.info("log: sinks no longer configured, positions dropped: %s", gone)
        return gone

    def lag(self, sink: str, kinds: Collection[Kind] = EVERYTHING) -> SinkLag:
        """What ``sink`` has not committed, of the ``kinds`` it wants and are asked for."""
        cursor = self._cursors[sink]
        kinds = sorted(cursor.kinds & frozenset(kinds))
        if not kinds:
            return SinkLag(0, 0.0)
        marks = ",".join("?" * len(kinds))
        count, oldest = self._db.execute(
            f"SELECT COUNT(*), MIN(stored_at) FROM log WHERE row > ? AND kind IN ({marks})",
            (cursor.committed, *kinds),
        ).fetchone()
        return SinkLag(int(count), max(0.0, steady() - oldest) if oldest else 0.0)

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
            _say(seq, event)
        self._last_seq = seq  # numbered now, in memory if the disk does not take them
        self._held.append((rows, dict(state or {})))
        stored = self._store_held()
        self._notify(stored, events=True, held=bool(rows))
        return stored

    def _store_held(self) -> list[StoredRecord]:
        """Everything held, in one durable transaction; [] and held on if it fails."""
        if not self._held or not self._writable:
            return []
        now = steady()  # on disk for the age of a backlog and telemetry expiry: a duration
        try:
            with self._transaction():
                stored = [
                    self._insert(s, "event", t, "", r, now)
                    for rows, _ in self._held
                    for s, t, r in rows
                ]
                self._db.execute(
                    "UPDATE counters SET value = ? WHERE name = 'last_seq'", (self._last_seq,)
                )
                state = {k: v for _, held_state in self._held for k, v in held_state.items()}
                if state:
                    self._db.executemany(
                        "INSERT INTO state (key, value) VALUES (?, ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        [(k, json.dumps(v, separators=(",", ":"))) for k, v in state.items()],
                    )
        except sqlite3.Error as err:
            self._failed(err)
            return []
        self._held.clear()
        if self._fault is not None:
            self._write_cursors()
        return stored

    def emit_telemetry(self, messages: Mapping[str, Mapping[str, Any]]) -> list[StoredRecord]:
        """Store telemetry, ``{device: body}``; it carries no event sequence number, and is
        not stored at all when no sink wants it."""
        if self._fault is not None or not any(
            "telemetry" in c.kinds for c in self._cursors.values()
        ):
            return []  # telemetry is the first thing a failing disk costs
        now = steady()  # on disk for the age of a backlog and telemetry expiry: a duration
        try:
            with self._transaction(durable=False):
                stored = [
                    self._insert(
                        None, "telemetry", "telemetry", device, _json({**self._source, **body}), now
                    )
                    for device, body in messages.items()
                ]
        except sqlite3.Error as err:
            self._failed(err)
            return []
        self._notify(stored, events=False)
        return stored

    def load_state(self, prefix: str = "") -> dict[str, Any]:
        rows = self._db.execute(
            "SELECT key, value FROM state WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
        ).fetchall()
        found = {key[len(prefix) :]: json.loads(value) for key, value in rows}
        for _, state in self._held:
            found.update({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        return found

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

    def row_of(self, seq: int) -> int | None:
        """The row of the event numbered ``seq``, while it is on disk (or held)."""
        found = self._db.execute("SELECT row FROM log WHERE seq = ?", (seq,)).fetchone()
        return int(found[0]) if found else None

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
            if not self._writable:
                break
            with self._transaction(durable=False):
                self._db.executemany("DELETE FROM log WHERE row = ?", victims)
            dropped += len(victims)
        return dropped

    def _commit_cursor(self, sink: str, row: int) -> None:
        if self._fault is not None:
            return  # kept in memory; ``heal`` writes every position once the disk takes it
        try:
            with self._transaction(durable=False):
                self._db.execute("UPDATE cursors SET row = ? WHERE sink = ?", (row, sink))
                self._trim()
        except sqlite3.Error as err:
            self._failed(err)

    def _failed(self, err: sqlite3.Error) -> None:
        if self._fault is not None:
            return  # said once, when it began
        self._fault = f"cannot write the event log: {err}"
        _logger.error(
            "%s; detection and relays run on, %d events wait in memory, telemetry is dropped",
            self._fault,
            self.held,
        )
        self._tell(self._fault)

    def _healed(self) -> None:
        _logger.info("event log writable again: every held event is on disk")
        self._fault = None
        self._tell(None)

    def _tell(self, reason: str | None) -> None:
        for watcher in self._watchers:
            try:  # a watcher reacts on its own turn of the loop, never inside a write
                asyncio.get_running_loop().call_soon(watcher, reason)
            except RuntimeError:
                watcher(reason)

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

    def _notify(self, stored: list[StoredRecord], events: bool, held: bool = False) -> None:
        """Wake the sinks for what was stored; tell listeners of what was emitted, on disk
        or held (the retained state must show an alarm raised while the disk is full)."""
        kind: Kind = "event" if events else "telemetry"
        if stored:
            for cursor in self._cursors.values():
                if kind in cursor.kinds:
                    cursor.wake.set()
        elif not held:
            return
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
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back by itself
                self._db.execute("ROLLBACK")
            raise


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

    def commit_upto(self, row: int) -> None:
        """Everything up to ``row`` is delivered, whatever was acknowledged so far (a
        confirmation from the far end, not from the next hop)."""
        self._out = {r for r in self._out if r > row}
        upto = min(row, min(self._out) - 1) if self._out else row
        self._position = max(self._position, upto)  # what the far end has needs no resend
        if upto > self._committed:
            self._committed = upto
            self._log._commit_cursor(self.name, upto)

    def restart(self, row: int) -> None:
        """Start again at ``row``, as if newly opened (the log changed its file)."""
        self._position = self._committed = row
        self._out.clear()
        self.wake.set()

    def rewind(self, row: int) -> None:
        """Read again from ``row`` on; rows already acknowledged after it come again."""
        self._position = min(self._position, row - 1)
        self.wake.set()

    async def wait(self) -> None:
        """Until something new is stored (or a rewind asks for a re-read)."""
        await self.wake.wait()
        self.wake.clear()


_events = logging.getLogger("gateway.events")


def _say(seq: int, event: Event) -> None:
    """One journal line per event, with the fields a journal user filters on: ``SEQ``, and
    ``ALARM`` or ``RELAY`` where the event concerns one (gateway/cli/journal.py)."""
    fields: dict[str, object] = {"seq": seq}
    alarm = event.body.get("alarm")
    actuator = event.body.get("actuator")
    if isinstance(alarm, dict) and "id" in alarm:
        fields["alarm"] = alarm["id"]
    if isinstance(actuator, dict) and "name" in actuator:
        fields["relay"] = actuator["name"]
    subject = fields.get("alarm") or fields.get("relay") or ""
    _events.info("event %d %s %s", seq, event.type, subject, extra=fields)


def _open_file(path: Path) -> sqlite3.Connection:
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
    except BaseException:
        db.close()
        raise
    return db


def _last_seq_of(path: Path) -> int:
    """The last sequence number a log file holds, 0 if it cannot be read."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            (last,) = db.execute("SELECT value FROM counters WHERE name = 'last_seq'").fetchone()
            return int(last)
    except (sqlite3.Error, TypeError):
        return 0


def _stand_in(path: Path) -> sqlite3.Connection:
    """An empty log in memory that numbers on from the file's last sequence number."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(_SCHEMA)
    db.execute("UPDATE counters SET value = ? WHERE name = 'last_seq'", (_last_seq_of(path),))
    return db


def _set_aside(path: Path, err: sqlite3.DatabaseError) -> tuple[sqlite3.Connection, str]:
    """Keep a damaged log as ``<name>.damaged-<time>`` and begin a new one: its connection,
    and what happened, for the ``gateway.storage.fault`` alarm."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    last = _last_seq_of(path)
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            part.replace(aside.with_name(aside.name + suffix))
    numbering = (
        f"numbering goes on from seq {last}"
        if last
        else "numbering starts again at seq 1 (the damaged file's last number cannot be read)"
    )
    notice = (
        f"event log {path} was damaged ({err}) and is kept as {aside.name}; a new log began,"
        f" {numbering}; events no sink had yet were not sent"
    )
    _logger.error(
        "%s. To recover them: stop the gateway, run `sqlite3 %s .recover > recovered.sql`,"
        " and hand the `log` rows to the WMS by hand",
        notice,
        aside,
    )
    db = _open_file(path)
    db.execute("UPDATE counters SET value = ? WHERE name = 'last_seq'", (last,))
    return db, notice

"""The event file: every event as one JSON line in a local file, a sink of the log.

For audits and for log shippers (Filebeat, Vector, Promtail tail JSON lines): a record of
what the gateway said, kept on the gateway itself, whether the WMS is reachable or not.
Each line is the event record of the contract (``docs/events.md``), exactly as the MQTT
uplink publishes it. Lines are appended and flushed to the disk (``fsync``) before the
sink acknowledges them to the log.

Exactly once, in order: on start the sink reads the event ids of the file's last lines
and skips a record it finds among them, so that a crash between the write and the
acknowledgement repeats nothing; a torn last line (a crash in mid-write) is cut off. It
goes by event id, not by sequence number, because numbering starts again with a new log
(a new data directory, or a damaged log set aside): that is said in the journal, and
every event is still written.
When the file reaches ``max_mb`` it is renamed to ``<name>.1`` (replacing an older one)
and a new file is begun.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from gateway.config.settings import EventFileSection
from gateway.sinks.base import BatchSink
from gateway.storage.log import EVENTS, EVERYTHING, EventLog, StoredRecord

_logger = logging.getLogger(__name__)

SINK = "file"
_TAIL = 1024 * 1024  # bytes read back for the ids of the last lines (a few thousand)


class EventFileSink(BatchSink):
    name = SINK

    def __init__(self, config: EventFileSection, log: EventLog) -> None:
        super().__init__(log.cursor(SINK, EVERYTHING if config.telemetry else EVENTS))
        assert config.path is not None, "an event file sink needs a path"
        self._path: Path = config.path
        self._max_bytes = int(config.max_mb * 1024 * 1024)
        self._fsync = config.fsync
        self._recent: set[str] | None = None  # ids of the file's last lines, at start
        self._last_seq = 0

    async def deliver(self, records: Sequence[StoredRecord]) -> None:
        await asyncio.to_thread(self._write, records)

    def _write(self, records: Sequence[StoredRecord]) -> None:
        if self._recent is None:
            self._recent = self._recover()
        if self._recent:
            records = self._unwritten(records, self._recent)
        if not records:
            return
        lines = [r.record + b"\n" for r in records]
        if self._path.exists() and self._path.stat().st_size >= self._max_bytes:
            self._path.replace(self._path.with_name(self._path.name + ".1"))
        with self._path.open("ab") as out:
            out.writelines(lines)
            out.flush()
            if self._fsync:
                os.fsync(out.fileno())

    def _unwritten(
        self, records: Sequence[StoredRecord], recent: set[str]
    ) -> Sequence[StoredRecord]:
        """Drop what the file already holds: the records delivered again after a crash come
        first, so checking stops at the first record the file does not hold."""
        for index, record in enumerate(records):
            if record.seq is None:
                continue
            if json.loads(record.record).get("event_id") in recent:
                continue
            if record.seq <= self._last_seq:
                _logger.warning(
                    "event file %s: sequence numbers start again at %d after %d (a new event"
                    " log); every event is still written, in the order it came",
                    self._path,
                    record.seq,
                    self._last_seq,
                )
            recent.clear()
            return records[index:]
        return []

    def _recover(self) -> set[str]:
        """The event ids of the file's last lines; cuts a torn tail."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if not self._path.exists():
            return set()
        with self._path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL))
            tail = f.read()
            if tail and not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n") + 1
                f.truncate(size - len(tail) + cut)
                _logger.warning("event file %s: cut a torn last line", self._path)
                tail = tail[:cut]
        recent: set[str] = set()
        for line in tail.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the first line of the tail is usually cut
            if isinstance(event, dict) and isinstance(event.get("seq"), int):
                recent.add(str(event.get("event_id")))
                self._last_seq = event["seq"]
        return recent

"""The event file: every event as one JSON line in a local file, a sink of the log.

For audits and for log shippers (Filebeat, Vector, Promtail tail JSON lines): a record of
what the gateway said, kept on the gateway itself, whether the WMS is reachable or not.
Each line is the event record of the contract (``docs/events.md``), exactly as the MQTT
uplink publishes it. Lines are appended and flushed to the disk (``fsync``) before the
sink acknowledges them to the log.

Exactly once, in order: on start the sink reads the last complete line of the file and
skips events up to its ``seq``, so that a crash between the write and the
acknowledgement repeats nothing; a torn last line (a crash in mid-write) is cut off.
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
_TAIL = 64 * 1024  # bytes read back to find the last line


class EventFileSink(BatchSink):
    name = SINK

    def __init__(self, config: EventFileSection, log: EventLog) -> None:
        super().__init__(log.cursor(SINK, EVERYTHING if config.telemetry else EVENTS))
        assert config.path is not None, "an event file sink needs a path"
        self._path: Path = config.path
        self._max_bytes = int(config.max_mb * 1024 * 1024)
        self._fsync = config.fsync
        self._last_seq: int | None = None

    async def deliver(self, records: Sequence[StoredRecord]) -> None:
        await asyncio.to_thread(self._write, records)

    def _write(self, records: Sequence[StoredRecord]) -> None:
        if self._last_seq is None:
            self._last_seq = self._recover()
        lines = [r.record + b"\n" for r in records if r.seq is None or r.seq > self._last_seq]
        if not lines:
            return
        if self._path.exists() and self._path.stat().st_size >= self._max_bytes:
            self._path.replace(self._path.with_name(self._path.name + ".1"))
        with self._path.open("ab") as out:
            out.writelines(lines)
            out.flush()
            if self._fsync:
                os.fsync(out.fileno())
        seqs = [r.seq for r in records if r.seq is not None]
        if seqs:
            self._last_seq = max(self._last_seq, *seqs)

    def _recover(self) -> int:
        """The ``seq`` of the last complete event line, 0 for none; cut a torn tail."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if not self._path.exists():
            return 0
        with self._path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL))
            tail = f.read()
            if tail and not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n") + 1
                f.truncate(size - len(tail) + cut)
                _logger.warning("event file %s: cut a torn last line", self._path)
                tail = tail[:cut]
        for line in reversed(tail.splitlines()):
            try:
                seq = json.loads(line).get("seq")
            except ValueError:
                continue
            if isinstance(seq, int):
                return seq
        return 0

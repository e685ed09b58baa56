"""What every sink is, and the delivery loop that batch sinks share.

A sink is an async context manager with a ``name``; it takes its cursor from the log,
naming the kinds of records it wants. ``BatchSink`` is the common case, the shape of a
Telegraf output with its own buffer: read a batch, ``deliver`` it, acknowledge it; a batch
that fails is offered again after a back-off that doubles from ``retry_min`` up to
``retry_max`` seconds and starts again after a success. The buffer is the log on disk,
so a sink that is down for a day loses nothing and holds no memory.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Protocol

from gateway.core.tasks import cancel_all
from gateway.storage.log import Cursor, StoredRecord

_logger = logging.getLogger(__name__)


class Sink(Protocol):
    name: str

    async def __aenter__(self) -> Sink: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BatchSink(ABC):
    """Subclasses set ``name``, take their cursor from the log and implement ``deliver``."""

    name: str
    batch: int = 500
    retry_min: float = 0.5
    retry_max: float = 30.0

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor
        self._task: asyncio.Task[None] | None = None
        self.last_error = ""

    @abstractmethod
    async def deliver(self, records: Sequence[StoredRecord]) -> None:
        """Deliver ``records`` durably, in order, or raise; they are then offered again."""

    async def __aenter__(self) -> BatchSink:
        self._task = asyncio.create_task(self._run(), name=f"sink-{self.name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            await cancel_all([self._task])

    async def _run(self) -> None:
        delay = self.retry_min
        self._cursor.wake.set()  # whatever is waiting from before the start
        while True:
            records = self._cursor.read(self.batch)
            if not records:
                await self._cursor.wait()
                continue
            try:
                await self.deliver(records)
            except Exception as err:  # a sink's failure must never end its loop
                if str(err) != self.last_error:
                    _logger.warning(
                        "sink %s cannot deliver (%s); %d+ records wait in the log",
                        self.name,
                        err,
                        len(records),
                    )
                self.last_error = str(err)
                self._cursor.rewind(records[0].row)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            if self.last_error:
                _logger.info("sink %s delivers again", self.name)
                self.last_error = ""
            delay = self.retry_min
            self._cursor.ack(r.row for r in records)
            await asyncio.sleep(0)  # let the loop breathe between large batches

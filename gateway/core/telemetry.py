"""Telemetry: the latest value of every point, per device, at most once per interval.

Rate-limited by design: however fast the pollers run, the uplink carries one message per
device per ``interval``. A device's message goes out with the poll that makes it due,
not on a timer of its own, so a device polled once per interval reports every poll, with
no wait. A tenth of the interval is allowed for the jitter between two polls, or a poll
that ran a millisecond early would wait a whole period.

Messages queue in the outbox like events, but under the disk quota the oldest telemetry is
dropped first and events never are. Devices that fall due in the same turn of the event
loop share one outbox transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from gateway.core.samples import Sample
from gateway.storage.outbox import Outbox, iso_utc

_JITTER = 0.1


class Telemetry:
    def __init__(
        self, outbox: Outbox, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._outbox = outbox
        self._min_gap = interval * (1 - _JITTER)
        self._clock = clock
        self._latest: dict[str, dict[str, Sample]] = {}
        self._sent_at: dict[str, float] = {}
        self._due: set[str] = set()

    def __call__(self, samples: Sequence[Sample]) -> None:
        now = self._clock()
        for sample in samples:
            device, _, key = sample.point.partition(".")
            self._latest.setdefault(device, {})[key] = sample
            if device not in self._due and now - self._sent_at.get(device, -1e18) >= self._min_gap:
                self._due.add(device)
                self._sent_at[device] = now
                if len(self._due) == 1:
                    self._schedule_flush()

    def _schedule_flush(self) -> None:
        with contextlib.suppress(RuntimeError):  # no loop: the caller flushes by hand
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        if not self._due:
            return
        now = iso_utc(time.time())
        # A block read stamps all its points alike: format each time once, not per point.
        stamps: dict[float, str] = {}

        def stamp(ts: float) -> str:
            text = stamps.get(ts)
            if text is None:
                text = stamps[ts] = iso_utc(ts)
            return text

        messages: dict[str, dict[str, Any]] = {
            device: {
                "ts": now,
                "device": device,
                "points": {
                    key: {"value": s.value, "quality": s.quality.value, "ts": stamp(s.ts)}
                    for key, s in sorted(self._latest.pop(device).items())
                },
            }
            for device in sorted(self._due)
        }
        self._due.clear()
        self._outbox.emit_telemetry(messages)

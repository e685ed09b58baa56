"""Telemetry: the latest value of every point, per device, at most once per interval.

Rate-limited by design: however fast the pollers run, the uplink carries on average one
message per device per ``interval``. A device's message goes out with the poll that makes
it due, not on a timer of its own, so a device polled once per interval reports every
poll, with no wait. The limit is a token bucket that holds one spare message: a poll that
came late and the early one after it both go out, so jitter never drops a reading.

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

from gateway.storage.log import EventLog, iso_utc
from vocab.samples import Sample

_SPARE = 1.0  # messages a device may send ahead of its average rate
_EPSILON = 1e-9  # ten polls of 0.1 s make 0.9999999999 s


class Telemetry:
    def __init__(
        self, log: EventLog, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._latest: dict[str, dict[str, Sample]] = {}
        self._tokens: dict[str, tuple[float, float]] = {}  # device -> (tokens, at)
        self._due: set[str] = set()

    def __call__(self, samples: Sequence[Sample]) -> None:
        now = self._clock()
        for sample in samples:
            device, _, key = sample.point.partition(".")  # ids.parse_point_id, inlined: hot path
            self._latest.setdefault(device, {})[key] = sample
            if device not in self._due and self._take_token(device, now):
                self._due.add(device)
                if len(self._due) == 1:
                    self._schedule_flush()

    def _take_token(self, device: str, now: float) -> bool:
        tokens, at = self._tokens.get(device, (1.0 + _SPARE, now))
        tokens = min(1.0 + _SPARE, tokens + (now - at) / self._interval)
        if tokens < 1.0 - _EPSILON:
            self._tokens[device] = (tokens, now)
            return False
        self._tokens[device] = (tokens - 1.0, now)
        return True

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
        self._log.emit_telemetry(messages)

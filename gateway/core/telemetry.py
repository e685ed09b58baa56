"""Telemetry: the latest value of every point, per device, at most once per interval.

Rate-limited by design: however fast the pollers run, the uplink carries one message per
device per ``interval``. Messages queue in the outbox like events, but under the disk
quota the oldest telemetry is dropped first and events never are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from gateway.core.samples import Sample
from gateway.storage.outbox import Outbox, iso_utc


class Telemetry:
    def __init__(self, outbox: Outbox, interval: float) -> None:
        self._outbox = outbox
        self._interval = interval
        self._latest: dict[str, dict[str, Sample]] = {}

    def __call__(self, samples: Sequence[Sample]) -> None:
        for sample in samples:
            device, _, key = sample.point.partition(".")
            self._latest.setdefault(device, {})[key] = sample

    def flush(self) -> None:
        if not self._latest:
            return
        now = iso_utc(time.time())
        messages: dict[str, dict[str, Any]] = {
            device: {
                "ts": now,
                "device": device,
                "points": {
                    key: {"value": s.value, "quality": s.quality.value, "ts": iso_utc(s.ts)}
                    for key, s in sorted(points.items())
                },
            }
            for device, points in sorted(self._latest.items())
        }
        self._latest = {}
        self._outbox.emit_telemetry(messages)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.flush()

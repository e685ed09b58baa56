"""One poller per device: reads on a fixed period, never two reads at once.

A poll that outlasts its period is counted as an overrun and the missed slots are
skipped, so load beyond capacity lowers the sample rate instead of piling up reads,
memory and latency. Whatever the driver does, the loop survives it. A driver that
paces itself (``drivers.base.PacedDriver``: a unit on an overrun Modbus line) is asked for
how far to stretch its period before each wait.

Pollers start at different ``phase`` offsets within their period, so that fifty devices
of a thousand points do not all answer, and all go through the rules, in the same
millisecond of every second: an alarm never waits behind a burst of other devices'
samples. Spreading costs a wake-up of the process per phase, so ``phases`` spreads only
as far as the load asks: devices share a phase up to ``POINTS_PER_PHASE`` points (about
ten milliseconds of work), and a handful of small devices poll together.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.base import Driver, PacedDriver
from vocab.clock import steady
from vocab.samples import Sample, SampleHandler

_logger = logging.getLogger(__name__)

POINTS_PER_PHASE = 2000


def phases(devices: Sequence[tuple[float, int]]) -> list[float]:
    """A start offset for each ``(interval, points)``, spread within each interval's group."""
    groups: dict[float, list[int]] = {}
    for index, (interval, _) in enumerate(devices):
        groups.setdefault(interval, []).append(index)
    offsets = [0.0] * len(devices)
    for interval, members in groups.items():
        points = sum(devices[i][1] for i in members)
        slots = max(1, min(len(members), math.ceil(points / POINTS_PER_PHASE)))
        for n, index in enumerate(members):
            offsets[index] = interval * (n % slots) / slots
    return offsets


@dataclass(slots=True)
class PollStats:
    polls: int = 0
    overruns: int = 0
    failures: int = 0
    bad_polls: int = 0  # polls with a bad-quality sample: a timeout, an exception reply, ...
    last_duration: float = 0.0


class Poller:
    def __init__(
        self,
        name: str,
        driver: Driver,
        interval: float,
        point_ids: Sequence[str],
        publish: SampleHandler,
        phase: float = 0.0,
    ) -> None:
        self.name = name
        self.stats = PollStats()
        self._driver = driver
        self.interval = interval
        self._point_ids = list(point_ids)
        self._publish = publish
        self._phase = phase
        self._stretch = driver.stretch if isinstance(driver, PacedDriver) else None

    async def run(self) -> None:
        await asyncio.sleep(self._phase)
        next_due = time.monotonic()
        while True:
            started = time.monotonic()
            samples = await self._poll_once()
            self.stats.polls += 1
            self.stats.last_duration = time.monotonic() - started
            if any(not s.is_good for s in samples):
                self.stats.bad_polls += 1
            self._publish(samples)
            next_due += self._period()
            now = time.monotonic()
            if now > next_due:
                self.stats.overruns += 1
                next_due = now
            await asyncio.sleep(next_due - now)

    def _period(self) -> float:
        if self._stretch is None:
            return self.interval
        return self.interval * self._stretch()

    async def _poll_once(self) -> list[Sample]:
        try:
            return await self._driver.read()
        except Exception as err:
            # A driver should report failures as bad samples; if one raises anyway,
            # its points go bad and the loop carries on.
            self.stats.failures += 1
            _logger.exception("device %s: read raised", self.name)
            now, mono = time.time(), steady()
            return [Sample.bad(p, now, mono, f"driver error: {err!r}") for p in self._point_ids]

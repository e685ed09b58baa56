"""Readers that stay away are alarms: ``device.<reader>.comm`` after ``alarm_after``.

A scanner driver publishes its point ``<reader>.connected`` on the sample bus when its
port or stream opens or is lost; ``ReaderWatch`` listens there (times on the event loop's
monotonic clock) and reports through the condition bus like the relay module's watchdog.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence

from drivers.scanner_config import CONNECTED, ScannerConfig
from gateway.config.settings import GatewaySettings
from rules.alarms import ConditionChange
from vocab.clock import steady
from vocab.ids import device_comm_id, point_id
from vocab.samples import Sample


def scanner_configs(settings: GatewaySettings) -> dict[str, ScannerConfig]:
    """The configured readers (``driver = "scanner"``) by device name, in file order."""
    return {d.name: d for d in settings.devices if isinstance(d, ScannerConfig)}


class ReaderWatch:
    """A reader that stays away is an alarm, not silence: on the sample bus, a bad
    ``<reader>.connected`` that is not good again within the reader's ``alarm_after``
    seconds raises ``device.<reader>.comm``; a good one clears it."""

    def __init__(
        self,
        readers: Mapping[str, ScannerConfig],
        conditions: Callable[[ConditionChange], None],
        active: Collection[str] = (),
    ) -> None:
        """``active``: alarm ids whose condition held when the gateway stopped (restored
        from the log), so that a reader back at start-up clears its alarm from before."""
        self._after = {point_id(n, CONNECTED): (n, c.alarm_after) for n, c in readers.items()}
        self._conditions = conditions
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._raised = {n for n in readers if device_comm_id(n) in active}

    def __call__(self, samples: Sequence[Sample], /) -> None:
        for sample in samples:
            if sample.point not in self._after:
                continue
            name, after = self._after[sample.point]
            if sample.is_good:
                timer = self._pending.pop(name, None)
                if timer is not None:
                    timer.cancel()
                if name in self._raised:
                    self._raised.discard(name)
                    self._tell(name, False, "reader connected again")
            elif name not in self._pending and name not in self._raised:
                reason = sample.reason or "lost"
                loop = asyncio.get_running_loop()
                self._pending[name] = loop.call_later(after, self._lost, name, reason)

    def close(self) -> None:
        for timer in self._pending.values():
            timer.cancel()
        self._pending.clear()

    def _lost(self, name: str, reason: str) -> None:
        self._pending.pop(name, None)
        self._raised.add(name)
        self._tell(name, True, f"reader {name} away: {reason}"[:500])

    def _tell(self, name: str, active: bool, message: str) -> None:
        self._conditions(
            ConditionChange(
                alarm_id=device_comm_id(name), active=active, ts=steady(), message=message
            )
        )

    @staticmethod
    def of(
        settings: GatewaySettings,
        conditions: Callable[[ConditionChange], None],
        active: Collection[str] = (),
    ) -> ReaderWatch:
        return ReaderWatch(scanner_configs(settings), conditions, active)

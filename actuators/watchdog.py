"""Feeding a relay module's host watchdog, so that a dead gateway is noticed by hardware.

Industrial I/O modules (Moxa ioLogik, Advantech ADAM, cheap RS-485 boards with a timed
"flash-on") drop their outputs to configured safe values when the host stops talking. The
gateway arms the module's timeout at start, then writes a counter every ``interval``. If
those writes fail for longer than the module's timeout, the module has already gone to its
safe values: that is an alarm, ``device.<name>.comm``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from drivers.base import Driver, WriteError
from rules.alarms import AlarmDefinition, ConditionChange
from vocab.clock import steady
from vocab.ids import device_comm_id, point_id

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class WatchdogSpec:
    """A ``[[watchdogs]]`` table: each option is declared here and nowhere else."""

    device: str = Field(description="the relay module")
    heartbeat: str = Field(description="key of a writable register point on that device")
    interval: float = Field(default=1.0, gt=0, le=60, description="seconds between heartbeats")
    timeout: float = Field(
        default=3.0, gt=0, le=3600, description="seconds: the module's host-loss timeout"
    )
    timeout_point: str | None = Field(default=None, description="register that sets the timeout")

    @property
    def alarm_id(self) -> str:
        return device_comm_id(self.device)

    def definitions(self) -> list[AlarmDefinition]:
        return [
            AlarmDefinition(
                id=self.alarm_id,
                priority="high",
                level="comm",
                point=point_id(self.device, self.heartbeat),
            )
        ]


class ModuleWatchdog:
    def __init__(
        self, spec: WatchdogSpec, driver: Driver, on_fault: Callable[[ConditionChange], None]
    ) -> None:
        self.spec = spec
        self._driver = driver
        self._on_fault = on_fault
        self._armed = False
        self._last_ok = time.monotonic()
        self._faulted = False

    async def run(self) -> None:
        counter = 0
        while True:
            counter = (counter + 1) % 65536
            try:
                if not self._armed and self.spec.timeout_point is not None:
                    await self._driver.write(self.spec.timeout_point, self.spec.timeout)
                self._armed = True
                await self._driver.write(self.spec.heartbeat, counter)
            except WriteError as err:
                self._armed = False  # a module that restarted needs arming again
                silent = time.monotonic() - self._last_ok
                if silent >= self.spec.timeout and not self._faulted:
                    self._report(
                        True,
                        f"{self.spec.device}: no contact for {silent:.0f} s, "
                        f"its outputs are at their safe values ({err})",
                    )
            else:
                self._last_ok = time.monotonic()
                if self._faulted:
                    self._report(False, f"{self.spec.device}: contact again")
            await asyncio.sleep(self.spec.interval)

    def _report(self, active: bool, message: str) -> None:
        self._faulted = active
        (_logger.error if active else _logger.info)("watchdog: %s", message)
        self._on_fault(
            ConditionChange(
                alarm_id=self.spec.alarm_id, active=active, ts=steady(), message=message
            )
        )

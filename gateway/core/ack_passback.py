"""An operator's acknowledge in the gateway, passed back to the device that raised it.

A zone input fed by an OPC UA condition point (``[[devices.conditions]]`` with
``acknowledge = true``) is acknowledged twice over: in the gateway, as every alarm, and on
the server, through the condition's Acknowledge method (OPC 10000-9, 5.7.3), so the panel
shows it too. Only the alarm level is passed back (not the point's fault alarm), and only
commands of people: the gateway never acknowledges on a device by itself. A refusal by
the device is logged; the gateway's own acknowledge stands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from drivers.base import Acknowledger, Driver, WriteError
from vocab.events import Event
from vocab.ids import parse_point_id

_logger = logging.getLogger(__name__)


class AckPassBack:
    """``Pipeline.command_listeners`` entry: ``alarm.acknowledged`` events to drivers."""

    def __init__(self, drivers: Mapping[str, Driver]) -> None:
        self._drivers = drivers
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, events: Sequence[Event]) -> None:
        for event in events:
            target = self._target(event)
            if target is None:
                continue
            driver, key, comment = target
            task = asyncio.get_running_loop().create_task(self._send(driver, key, comment))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _target(self, event: Event) -> tuple[Acknowledger, str, str] | None:
        if event.type != "alarm.acknowledged":
            return None
        alarm = event.body.get("alarm", {})
        by = alarm.get("by", {})
        point = alarm.get("point")
        if alarm.get("level") != "alarm" or by.get("actor") != "operator" or not point:
            return None
        device, key = parse_point_id(point)
        driver = self._drivers.get(device)
        if not isinstance(driver, Acknowledger) or not driver.acknowledgeable(key):
            return None
        comment = f"acknowledged in CellSafe by {by.get('name') or 'an operator'}"
        return driver, key, comment

    async def _send(self, driver: Acknowledger, key: str, comment: str) -> None:
        try:
            await driver.acknowledge(key, comment)
        except WriteError as err:
            _logger.warning("acknowledge not passed back: %s", err)
        else:
            _logger.info("acknowledge passed back to %s", key)

    async def drain(self) -> None:
        """Wait for acknowledges still on their way (for a clean stop and for tests)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

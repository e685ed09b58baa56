"""Modbus lines: one client connection, one lock and one reconnect back-off per wire.

name: modbus_line
library: pymodbus >= 3.16 (any ``ModbusBaseClient``: TCP, RTU over TCP, serial)
mode: reference-counted; the last device to let go closes the connection

A serial port is one RS-485 line, and a serial-to-Ethernet converter is one line behind one
TCP connection: every device on it must go through the same open port, one request at a
time, because a reply carries nothing but the unit id to say whose it is (pyserial also
opens ports exclusively: a second open would fail). Devices naming the same line key share
one ``ModbusLine``; the lock serialises their requests in arrival order (asyncio's lock is
fair). A plain Modbus TCP device gets a line of its own, unshared.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable

from pymodbus.client import ModbusBaseClient

_logger = logging.getLogger(__name__)

ClientFactory = Callable[[], ModbusBaseClient]


class ModbusLine:
    """One connection and what paces it: hold ``lock`` around every request sequence.

    ``ensure_connected`` connects when the connection is down, at most once per back-off
    step: ``reconnect_min`` seconds after a failure, doubling up to ``reconnect_max``.
    """

    def __init__(
        self,
        client: ModbusBaseClient,
        where: str,
        reconnect_min: float,
        reconnect_max: float,
    ) -> None:
        self.client = client
        self.where = where
        self.lock = asyncio.Lock()
        self.devices: list[str] = []
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._backoff = reconnect_min
        self._next_connect = 0.0

    async def ensure_connected(self) -> bool:
        """True when the line can take a request now; call with ``lock`` held."""
        if self.client.connected:
            return True
        now = time.monotonic()
        if now < self._next_connect:
            return False
        if await self.client.connect():
            if self._backoff > self._reconnect_min:
                _logger.info("modbus line %s (%s) reconnected", self.where, self._names())
            self._backoff = self._reconnect_min
            return True
        _logger.warning(
            "modbus line %s (%s) unreachable, next try in %.1f s",
            self.where,
            self._names(),
            self._backoff,
        )
        self._next_connect = now + self._backoff
        self._backoff = min(self._backoff * 2, self._reconnect_max)
        return False

    def drop_if_lost(self) -> None:
        """After a failed request: if the connection went with it, wait a back-off step."""
        if not self.client.connected:
            self._next_connect = time.monotonic() + self._backoff

    def _names(self) -> str:
        return ", ".join(self.devices)


class LinePool:
    """Open lines by key, each counting the devices that use it."""

    def __init__(self) -> None:
        self._lines: dict[Hashable, ModbusLine] = {}

    def acquire(
        self,
        key: Hashable | None,
        device: str,
        factory: ClientFactory,
        where: str,
        reconnect: tuple[float, float],
    ) -> ModbusLine:
        """The line for ``key``, opened with ``factory`` if nobody has it yet.

        ``key=None`` always gives a new, unshared line. Nothing connects here: the first
        request does, so that a device that is down at start-up is not an error.
        """
        line = self._lines.get(key) if key is not None else None
        if line is None:
            line = ModbusLine(factory(), where, *reconnect)
            if key is not None:
                self._lines[key] = line
        line.devices.append(device)
        return line

    def release(self, key: Hashable | None, device: str, line: ModbusLine) -> None:
        """``device`` is done with ``line``; the last one out closes the connection."""
        if device in line.devices:
            line.devices.remove(device)
        if line.devices:
            return
        if key is not None and self._lines.get(key) is line:
            del self._lines[key]
        line.client.close()

    def __len__(self) -> int:
        return len(self._lines)


# The gateway's lines. Drivers are made and closed on the gateway's one event loop.
LINES = LinePool()

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

A line pays for a failure no more than the failure costs. A device that closes the
connection after a reply (legal for a Modbus TCP server, and what many TCP-to-serial
converters do) is reconnected before the next request, at once: a closed connection is
not a failed connection. A device that closes it while a request waits for its reply
fails that request at once instead of after the timeout, and the request is sent once
more on a new connection. Only a connect that fails starts the back-off
(``reconnect_min`` seconds, doubling up to ``reconnect_max``), and the back-off starts
again from ``reconnect_min`` once the line has answered for ``HEALTHY_AFTER`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from pymodbus.client import ModbusBaseClient
from pymodbus.exceptions import ConnectionException

_logger = logging.getLogger(__name__)

ClientFactory = Callable[[], ModbusBaseClient]
T = TypeVar("T")

HEALTHY_AFTER = 30.0  # seconds a line must answer before its back-off starts again


class NotConnected(ConnectionException):
    """The line is down and its back-off says: not yet."""


class ModbusLine:
    """One connection and what paces it: hold ``lock`` around every request sequence.

    ``request`` sends one request on it, connecting first if need be (see the module's
    doc); ``ensure_connected`` connects when the connection is down, at once unless the
    last connect failed, then at most once per back-off step.
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
        self._up_since = 0.0
        self.pause_after_connect = 0.0  # seconds; the longest any device on it asks for
        _fail_pending_on_close(client)

    async def request(self, send: Callable[[], Awaitable[T]]) -> T:
        """``send()`` on a live connection; call with ``lock`` held. Raises
        ``NotConnected`` while the back-off holds, and what ``send`` raises."""
        await asyncio.sleep(0)  # let a close that already arrived be seen before sending
        if not await self.ensure_connected():
            raise NotConnected(f"{self.where}: not connected")
        try:
            reply = await send()
        except ConnectionException:
            if self.client.connected:
                raise
            # The device closed the connection while we waited: once more, on a new one.
            if not await self.ensure_connected():
                raise
            reply = await send()
        if time.monotonic() - self._up_since >= HEALTHY_AFTER:
            self._backoff = self._reconnect_min
        return reply

    async def ensure_connected(self) -> bool:
        """True when the line can take a request now; call with ``lock`` held."""
        if self.client.connected:
            return True
        now = time.monotonic()
        if now < self._next_connect:
            return False
        if await self.client.connect():
            if self._next_connect:
                _logger.info("modbus line %s (%s) reconnected", self.where, self._names())
                self._next_connect = 0.0
            self._up_since = now
            if self.pause_after_connect:
                await asyncio.sleep(self.pause_after_connect)
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

    def _names(self) -> str:
        return ", ".join(self.devices)


def _fail_pending_on_close(client: ModbusBaseClient) -> None:
    """Make a close by the device fail the request waiting for its reply at once.

    pymodbus (3.16) leaves that request waiting for its full timeout; its transaction
    manager (``client.ctx``) is told of the close, so the waiting future is failed there.
    """
    manager: Any = getattr(client, "ctx", None)
    if manager is None or not hasattr(manager, "callback_disconnected"):
        return
    told = manager.callback_disconnected

    def closed(exc: Exception | None) -> None:
        told(exc)
        waiting = getattr(manager, "response_future", None)
        if isinstance(waiting, asyncio.Future) and not waiting.done():
            waiting.set_exception(ConnectionException("the device closed the connection"))

    manager.callback_disconnected = closed


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

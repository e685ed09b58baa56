"""Modbus lines: one client connection, one lock and one reconnect back-off per wire.

name: modbus_line
library: pymodbus >= 3.16 (any ``ModbusBaseClient``: TCP, RTU over TCP, serial)
mode: reference-counted; the last device to let go closes the connection

A serial port is one RS-485 line, and a serial-to-Ethernet converter is one line behind one
TCP connection: every device on it must go through the same open port, one request at a
time, because a reply carries nothing but the unit id to say whose it is (pyserial also
opens ports exclusively: a second open would fail). Devices naming the same line key share
one ``ModbusLine``; the lock (``drivers.turn_lock.TurnLock``) serialises their requests in
arrival order, except that writes and read-backs (relays switched and verified), polls of
devices feeding safety rows, and while the line is overrun those it keeps at their rate, go
first. A plain Modbus TCP device gets a line of its own, unshared.

A line pays for a failure no more than the failure costs. A device that closes the
connection after a reply (legal for a Modbus TCP server, and what many TCP-to-serial
converters do) is reconnected before the next request, at once: a closed connection is
not a failed connection. A device that closes it while a request waits for its reply
fails that request at once instead of after the timeout, and the request is sent once
more on a new connection. Only a connect that fails starts the back-off
(``reconnect_min`` seconds, doubling up to ``reconnect_max``), and the back-off starts
again from ``reconnect_min`` once the line has answered for ``HEALTHY_AFTER`` seconds.

On a serial line the line also keeps the RTU timing (``drivers/modbus_timing.py``): no
request goes out before ``gap`` seconds (t3.5) of silence after the last frame, and each
request waits for its reply as long as its own device's ``timeout``, so that one slow
unit does not set the pace of the others. A reply the framer throws away for a bad CRC
fails its request at once, with that reason, instead of after the timeout (pymodbus 3.16's
RTU framer drops the buffered bytes and keeps waiting, so that a bad CRC would read as a
silent unit); a timeout after part of a frame arrived is reported as an incomplete frame.
A silent unit costs its own timeout and nothing more: pymodbus 3.16 counts replies missed
in a row over the whole client, and on a serial line it only says so in its message, it
does not close the port; a reply from another unit id than asked is skipped, as noise.

``load`` (``drivers.modbus_load``) plans the line's polls (``drivers/modbus_schedule.py``)
from what each device's poll really costs on it, measured.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from pymodbus.client import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerRTU

from drivers.modbus_load import LineLoad, LineStatus
from drivers.turn_lock import TurnLock
from vocab.clock import steady

_logger = logging.getLogger(__name__)

ClientFactory = Callable[[], ModbusBaseClient]
T = TypeVar("T")

HEALTHY_AFTER = 30.0  # seconds a line must answer before its back-off starts again


class NotConnected(ConnectionException):
    """The line is down and its back-off says: not yet."""


class ReplyError(ModbusIOException):
    """A request that got no usable reply; ``reason`` says why, in words fit for a
    sample's reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FrameError(ReplyError):
    """A reply arrived but was no valid frame: a bad CRC, or a frame broken off."""


class NoReply(ReplyError):
    """Nothing came back within the device's timeout; ``reason`` says how long."""


class ModbusLine:
    """One connection and what paces it: hold ``lock`` around every request sequence
    (``lock.turn(urgent)`` for a poll that must not queue behind others).

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
        gap: float = 0.0,
    ) -> None:
        self.client = client
        self.gap = gap  # seconds of silence between frames (t3.5); 0 off a serial line
        self.load = LineLoad(where)
        self.where = where
        self.lock = TurnLock()
        self.devices: list[str] = []
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._backoff = reconnect_min
        self._next_connect = 0.0
        self._up_since = 0.0
        self.pause_after_connect = 0.0  # seconds; the longest any device on it asks for
        self._quiet_since = 0.0  # steady time of the last frame's end
        self._frames = _watch_frames(client)
        _fail_pending_on_close(client)

    async def request(
        self, send: Callable[[], Awaitable[T]], reply_within: float | None = None
    ) -> T:
        """``send()`` on a live connection; call with ``lock`` held. ``reply_within``: seconds
        to wait for this request's reply (the client's own when ``None``).

        Raises ``NotConnected`` while the back-off holds, ``FrameError`` for a reply with
        a bad CRC or broken off, ``NoReply`` when nothing came, and what ``send`` raises.
        """
        await asyncio.sleep(0)  # let a close that already arrived be seen before sending
        if not await self.ensure_connected():
            raise NotConnected(f"{self.where}: not connected")
        if reply_within is not None:
            self.client.ctx.comm_params.timeout_connect = reply_within
        try:
            reply = await self._send(send)
        except ConnectionException:
            if self.client.connected:
                raise
            # The device closed the connection while we waited: once more, on a new one.
            if not await self.ensure_connected():
                raise
            reply = await self._send(send)
        if steady() - self._up_since >= HEALTHY_AFTER:
            self._backoff = self._reconnect_min
        return reply

    async def _send(self, send: Callable[[], Awaitable[T]]) -> T:
        """One exchange, after the inter-frame gap; its failure named by what arrived."""
        if self.gap:
            wait = self._quiet_since + self.gap - steady()
            if wait > 0:
                await asyncio.sleep(wait)
        self._frames.received = 0
        try:
            return await send()
        except FrameError:
            raise
        except ModbusIOException as err:
            if "No response received" not in str(err):
                raise
            waited = self.client.ctx.comm_params.timeout_connect
            got = self._frames.received
            if got:
                raise FrameError(
                    f"incomplete frame: {got} bytes, then silence for {waited:g} s"
                ) from err
            raise NoReply(f"no reply within {waited:g} s") from err
        finally:
            # The silence starts with the reply's last byte, not when we got round to it.
            got = self._frames.received
            self._quiet_since = self._frames.last_at if got else steady()

    async def ensure_connected(self) -> bool:
        """True when the line can take a request now; call with ``lock`` held."""
        if self.client.connected:
            return True
        now = steady()
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


class _FrameWatch:
    """What the client's framer saw of the current reply: ``received`` bytes, the last
    of them at ``last_at`` (steady clock)."""

    def __init__(self) -> None:
        self.received = 0
        self.last_at = 0.0


def _watch_frames(client: ModbusBaseClient) -> _FrameWatch:
    """Count the bytes of each reply and fail a request at once on a bad CRC.

    pymodbus (3.16.1) ``FramerRTU.decode`` drops every buffered byte when a complete
    frame's CRC does not match, returning no PDU, and the request then waits out its
    whole timeout as if the unit were silent. Its answer on a CRC mismatch is the only
    one that consumes bytes without a PDU, which is how it is told apart here.
    """
    watch = _FrameWatch()
    manager: Any = getattr(client, "ctx", None)
    framer = getattr(manager, "framer", None)
    if not isinstance(framer, FramerRTU):
        return watch
    decode = framer.decode

    def watched(data: bytes) -> tuple[int, int, int, bytes]:
        watch.received = max(watch.received, len(data))
        watch.last_at = steady()
        used, unit, tid, pdu = decode(data)
        if used and not pdu:
            _fail_waiting(
                manager, FrameError(f"CRC error in a {len(data)}-byte reply (frame dropped)")
            )
        return used, unit, tid, pdu

    framer.decode = watched  # type: ignore[method-assign]
    return watch


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
        _fail_waiting(manager, ConnectionException("the device closed the connection"))

    manager.callback_disconnected = closed


def _fail_waiting(manager: Any, error: Exception) -> None:
    """Fail the request that the transaction manager (``client.ctx``) waits on, if any."""
    waiting = getattr(manager, "response_future", None)
    if isinstance(waiting, asyncio.Future) and not waiting.done():
        waiting.set_exception(error)


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
        gap: float = 0.0,
    ) -> ModbusLine:
        """The line for ``key``, opened with ``factory`` if nobody has it yet.

        ``key=None`` always gives a new, unshared line. Nothing connects here: the first
        request does, so that a device that is down at start-up is not an error.
        """
        line = self._lines.get(key) if key is not None else None
        if line is None:
            line = ModbusLine(factory(), where, *reconnect, gap=gap)
            if key is not None:
                self._lines[key] = line
        line.devices.append(device)
        return line

    def release(self, key: Hashable | None, device: str, line: ModbusLine) -> None:
        """``device`` is done with ``line``; the last one out closes the connection."""
        if device in line.devices:
            line.devices.remove(device)
        line.load.remove(device)
        if line.devices:
            return
        if key is not None and self._lines.get(key) is line:
            del self._lines[key]
        line.client.close()

    def __len__(self) -> int:
        return len(self._lines)

    def protect(self, devices: set[str]) -> None:
        """Devices that feed safety rows keep their poll rate on every shared line."""
        for line in self._lines.values():
            line.load.protect(devices)

    def status(self) -> dict[str, LineStatus]:
        """Each shared line's ``LineLoad.status()``, by where it is (port or host:port)."""
        return {line.where: line.load.status() for line in self._lines.values()}


# The gateway's lines. Drivers are made and closed on the gateway's one event loop.
LINES = LinePool()

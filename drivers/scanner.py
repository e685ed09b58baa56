"""Scanner driver: barcode and RFID readers on a serial port or a TCP stream.

name: scanner
library: pyserial-asyncio-fast >= 0.13 (serial), asyncio streams (tcp)
mode: push (a ``ServiceDriver``: it reads while open and publishes each read as a scan)

A reader sends one read per frame, ended by CR, LF or CR LF, or wrapped in STX ... ETX
(``scanner_config.Framing``); a configured prefix and suffix are stripped. Each read
becomes a ``vocab.scans.Scan``; what it means is the stock logic's business. The point
``<name>.connected`` is true while the port or stream is open (once it has stayed open
``SETTLE`` seconds or brought a read: one that closes at once is no connection) and false
(with the reason) when it is lost: a USB-serial adapter pulled out, a reader switched off.
The driver then tries again with a back-off from ``reconnect_min`` to ``reconnect_max``
seconds, so an adapter put back (udev recreating ``/dev/serial/by-id/...``) is read again
without a restart. Nothing a reader sends can stop the loop: a read too long is dropped and logged.

``write("signal", "reject" | "accept")`` sends the configured reject or accept bytes to
the reader (a beep or an LED on most readers); ``WriteError`` when none is configured or
the reader is away.

Keyboard-wedge readers (USB HID, typing into a focused window) are not supported: reading
them headless needs the Linux evdev interface, read access to ``/dev/input/event*`` (the
``input`` group) and an exclusive grab so the reads do not also land on a console. Set
such readers to their USB-CDC (virtual COM port) mode, which every current handheld
offers, and use ``transport.type = "serial"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection

# pyserial's SerialException is an OSError: one except clause covers both transports.
from serial_asyncio_fast import open_serial_connection

from drivers import registry
from drivers.base import LinkReport, Publisher, WriteError
from drivers.scanner_config import (
    CONNECTED,
    ScannerConfig,
    SerialScannerTransport,
    TcpScannerTransport,
)
from vocab.clock import steady
from vocab.ids import point_id
from vocab.samples import Sample, Value
from vocab.scans import Scan

_logger = logging.getLogger(__name__)

SIGNAL = "signal"  # the write key that sends the reject or accept bytes
SETTLE = 0.2  # seconds a stream must stay open, without a read, to count as connected
STX, ETX = b"\x02", b"\x03"


class Framer:
    """Bytes in, reads out: ``feed(chunk)`` returns the complete reads in it, as text.

    A read is decoded as ASCII (GS1 element strings, EPC hex and plain codes all are);
    a byte outside ASCII becomes U+FFFD, which the stock logic reports as unreadable.
    Empty reads are skipped. A frame longer than ``max_length`` bytes is dropped whole and
    counted in ``dropped``; so are bytes outside STX ... ETX.
    """

    def __init__(self, config: ScannerConfig) -> None:
        self._terminator = config.terminator
        self._stx = config.framing == "stx_etx"
        self._prefix = config.prefix
        self._suffix = config.suffix
        self._max = config.max_length
        self._buffer = bytearray()
        self._overlong = False
        self.dropped = 0

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += chunk
        reads: list[str] = []
        while True:
            end = self._buffer.find(self._terminator)
            if end < 0:
                if len(self._buffer) > self._max:
                    # Counted now: a reader that never sends the configured terminator
                    # (framing set wrong) must not go unnoticed until it does.
                    self._buffer.clear()
                    self.dropped += not self._overlong
                    self._overlong = True
                return reads
            frame = bytes(self._buffer[:end])
            del self._buffer[: end + len(self._terminator)]
            if self._overlong:  # the tail of a frame already dropped and counted
                self._overlong = False
                continue
            text = self._unwrap(frame)
            if text:
                reads.append(text)

    def _unwrap(self, frame: bytes) -> str | None:
        if self._stx:
            start = frame.rfind(STX)
            if start < 0:
                self.dropped += 1
                return None
            frame = frame[start + 1 :]
        if len(frame) > self._max:
            self.dropped += 1
            return None
        text = frame.decode("ascii", errors="replace")
        if self._prefix and text.startswith(self._prefix):
            text = text[len(self._prefix) :]
        if self._suffix and text.endswith(self._suffix):
            text = text[: -len(self._suffix)]
        return text.strip("\r\n") or None


class ScannerDriver:
    """One reader. ``start(publisher)`` begins the connect-read loop; ``close`` ends it."""

    def __init__(self, config: ScannerConfig) -> None:
        self.config = config
        self.point = point_id(config.name, CONNECTED)
        self.connected = False
        self.connects = 0  # successful opens, for tests and status
        self._reason = "not started"
        self._publisher: Publisher | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self._task = asyncio.create_task(self._run(), name=f"scanner-{self.config.name}")

    async def read(self, keys: Collection[str] | None = None) -> list[Sample]:
        return [self._sample()]

    def link(self) -> LinkReport:
        if self.connected:
            return LinkReport(state="connected")
        return LinkReport(state="disconnected", error=self._reason)

    async def write(self, key: str, value: Value) -> None:
        if key != SIGNAL or value not in ("reject", "accept"):
            raise WriteError(f"{self.config.name}: only {SIGNAL} = 'reject' | 'accept' is writable")
        signal = self.config.reject_signal if value == "reject" else self.config.accept_signal
        if not signal:
            raise WriteError(f"{self.config.name}: no {value}_signal is configured")
        if self._writer is None:
            raise WriteError(f"{self.config.name}: the reader is not connected")
        try:
            self._writer.write(signal.encode("latin-1"))
            await asyncio.wait_for(self._writer.drain(), self.config.timeout)
        except (OSError, TimeoutError) as err:
            raise WriteError(f"{self.config.name}: {value} signal not sent: {err}") from err

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _sample(self) -> Sample:
        now, mono = time.time(), steady()
        if self.connected:
            return Sample.good(self.point, True, now, mono)
        return Sample.bad(self.point, now, mono, self._reason)

    def _state(self, connected: bool, reason: str) -> None:
        self.connected, self._reason = connected, reason
        if self._publisher is not None:
            self._publisher.samples([self._sample()])

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        match self.config.transport:
            case SerialScannerTransport() as serial:
                return await open_serial_connection(
                    url=serial.port,
                    baudrate=serial.baudrate,
                    bytesize=serial.bytesize,
                    parity=serial.parity,
                    stopbits=serial.stopbits,
                )
            case TcpScannerTransport(host=host, port=port):
                return await asyncio.wait_for(
                    asyncio.open_connection(host, port), self.config.timeout
                )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(self) -> None:
        name, where = self.config.name, self.config.transport.describe()
        delay = self.config.reconnect_min
        said_lost = False
        while True:
            try:
                reader, writer = await self._open()
            except (OSError, TimeoutError) as err:
                if not said_lost:
                    _logger.warning("scanner %s at %s cannot be opened: %s", name, where, err)
                    said_lost = True
                    self._state(False, f"cannot open {where}: {err}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.reconnect_max)
                continue
            self.connects += 1
            self._writer = writer
            # Connected once the stream has lasted SETTLE seconds or brought a read: a
            # converter whose one port is taken accepts and closes at once, and such a
            # reader must stay away (and be alarmed), not flap connected and lost.
            settle = asyncio.get_running_loop().call_later(SETTLE, self._up)
            reason = "closed by the reader"
            try:
                await self._read(reader)
            except OSError as err:
                reason = str(err) or type(err).__name__
            finally:
                settle.cancel()
                self._writer = None
                writer.close()
            if self.connected:
                _logger.warning("scanner %s at %s lost: %s", name, where, reason)
                self._state(False, f"lost: {reason}")
                delay = self.config.reconnect_min
            else:
                if not said_lost:
                    _logger.warning("scanner %s at %s closes at once: %s", name, where, reason)
                    self._state(False, f"closes at once: {reason}")
                delay = min(delay * 2, self.config.reconnect_max)
            said_lost = True
            await asyncio.sleep(delay)

    def _up(self) -> None:
        if not self.connected:
            _logger.info(
                "scanner %s connected at %s", self.config.name, self.config.transport.describe()
            )
            self._state(True, "")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        framer = Framer(self.config)
        seen = 0  # framer.dropped when last looked at
        dropping = -1  # frames dropped before the current run of drops; -1: none now
        while chunk := await reader.read(4096):
            reads = framer.feed(chunk)
            # One warning when frames begin to be dropped and one line when reads come
            # framed again, not one per chunk: a reader framed wrong sends chunks forever.
            if framer.dropped > seen and dropping < 0:
                dropping = seen
                _logger.warning(
                    "scanner %s: garbled frames dropped (longer than max_length, or not"
                    " framed as framing = %r says); said again when reads come framed",
                    self.config.name,
                    self.config.framing,
                )
            if reads and dropping >= 0:
                _logger.warning(
                    "scanner %s: reads framed again after %d garbled frames dropped",
                    self.config.name,
                    framer.dropped - dropping,
                )
                dropping = -1
            seen = framer.dropped
            if reads:
                self._up()
            if reads and self._publisher is not None:
                now = time.time()
                self._publisher.scans(
                    [
                        Scan(
                            scanner=self.config.name,
                            data=text,
                            symbology=self.config.symbology,
                            ts=now,
                        )
                        for text in reads
                    ]
                )


registry.register("scanner", ScannerConfig, ScannerDriver)

"""Modbus driver: block reads planned once, bad quality instead of exceptions.

name: modbus (``modbus_tcp``, the flat TCP-only form, is read as a deprecated alias)
library: pymodbus >= 3.16 (client calls take ``device_id=``); pyserial for ``rtu``
mode: polling

One driver for every transport: ``tcp``, ``rtu_over_tcp`` and ``rtu`` differ only in the
client ``open_client`` makes. Request planning (``modbus_plan``), decoding
(``modbus_codec``) and error handling are the same for all. Devices on one serial line or
one RTU-over-TCP converter share its connection and its lock (``modbus_line``), which
keeps the RTU inter-frame gap, waits for each unit's replies as long as that unit's own
``timeout`` and plans the line's polls (``modbus_schedule``): ``stretch`` is
how far the poller lengthens the device's period, 1.0 unless the line is overrun.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient, ModbusBaseClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from drivers import registry
from drivers.base import WriteError
from drivers.health import DeviceHealth
from drivers.modbus_codec import encode
from drivers.modbus_config import (
    DEPRECATED_DRIVER,
    ModbusConfig,
    ModbusPoint,
    RtuOverTcpTransport,
    RtuTransport,
    TcpTransport,
    Transport,
    check_shared_lines,
)
from drivers.modbus_line import LINES, LinePool, NotConnected, ReplyError
from drivers.modbus_plan import BIT_TABLES, ReadBlock, plan_reads
from drivers.modbus_quality import evaluate
from drivers.modbus_timing import exchange_time, frame_gap
from vocab.clock import steady
from vocab.ids import point_id
from vocab.samples import GOOD, Sample, Value

_logger = logging.getLogger(__name__)


def open_client(transport: Transport, timeout: float) -> ModbusBaseClient:
    """The pymodbus client for ``transport``, not yet connected; ``timeout`` in seconds.

    ``retries=0`` and ``reconnect_delay=0`` switch pymodbus' own retrying and reconnecting
    off: the line paces reconnects, so that a dead device costs one failed connect per
    back-off step, not one per poll, and a failed request is reported, not repeated.
    """
    match transport:
        case TcpTransport(host=host, port=port):
            return AsyncModbusTcpClient(
                host, port=port, timeout=timeout, retries=0, reconnect_delay=0
            )
        case RtuOverTcpTransport(host=host, port=port):
            return AsyncModbusTcpClient(
                host,
                port=port,
                framer=FramerType.RTU,
                timeout=timeout,
                retries=0,
                reconnect_delay=0,
            )
        case RtuTransport():
            return AsyncModbusSerialClient(
                transport.port,
                baudrate=transport.baudrate,
                bytesize=transport.bytesize,
                parity=transport.parity,
                stopbits=transport.stopbits,
                timeout=timeout,
                retries=0,
                reconnect_delay=0,
            )
    raise AssertionError(f"unknown transport {transport!r}")


class ModbusDriver:
    """One Modbus device (one unit id) on any transport; see the module docstring."""

    def __init__(self, config: ModbusConfig, lines: LinePool = LINES) -> None:
        self._config = config
        self._points = {p.key: p for p in config.points}
        self._ids = {p.key: point_id(config.name, p.key) for p in config.points}
        self._plan = plan_reads(
            config.points, config.optimization, config.max_register_fill, config.workarounds
        )
        transport = config.transport
        self._lines = lines
        self._line_key = transport.line
        self._line = lines.acquire(
            self._line_key,
            config.name,
            lambda: open_client(transport, config.timeout),
            transport.describe(),
            (config.reconnect_min, config.reconnect_max),
            frame_gap(transport.baudrate) if isinstance(transport, RtuTransport) else 0.0,
        )
        if self._line_key is not None:  # a shared line: its devices' polls share its time
            self._line.load.add(config.name, config.poll_interval, self._estimated_cost())
        self._client = self._line.client
        pause = config.workarounds.pause_after_connect
        self._line.pause_after_connect = max(self._line.pause_after_connect, pause)
        self._readers = {
            "holding": self._client.read_holding_registers,
            "input": self._client.read_input_registers,
            "coil": self._client.read_coils,
            "discrete_input": self._client.read_discrete_inputs,
        }
        self._layouts: dict[ReadBlock, list[ModbusPoint]] = {}
        self._health = DeviceHealth(config.name)
        self._failures = 0  # requests of the current read that got no usable reply
        self._reason: str | None = None
        self._closed = False

    @property
    def plan(self) -> list[ReadBlock]:
        return list(self._plan)

    def stretch(self) -> float:
        """1.0, or more while the line is overrun and this device neither feeds a safety
        row nor has the line's shortest interval: its poll period is stretched by this."""
        return self._line.load.stretch(self._config.name)

    def _estimated_cost(self) -> float:
        """Seconds of line time one poll takes, from frame lengths (``modbus_timing``)
        on a serial line; elsewhere a guess of 10 ms per request until measured."""
        transport = self._config.transport
        if not isinstance(transport, RtuTransport):
            return 0.01 * len(self._plan)
        codes = {"coil": 1, "discrete_input": 2, "holding": 3, "input": 4}
        return sum(exchange_time(codes[b.table], b.count, transport.baudrate) for b in self._plan)

    async def read(self, keys: Collection[str] | None = None) -> list[Sample]:
        plan = self._plan if keys is None else self._plan_for(keys)
        quirks = self._config.workarounds
        # A read of chosen points is a relay's read-back or feedback check: it goes first,
        # like the write it verifies; a poll goes first only when its device is protected.
        urgent = keys is not None or self._line.load.urgent(self._config.name)
        async with self._line.lock.turn(urgent):
            started = steady()
            self._failures, self._reason = 0, None
            samples: list[Sample] = []
            for n, block in enumerate(plan):
                if n and quirks.pause_between_requests:
                    await asyncio.sleep(quirks.pause_between_requests)
                samples.extend(await self._read_block(block))
            if quirks.close_connection_after_poll:
                self._client.close()
            if keys is None:
                self._line.load.measured(self._config.name, steady() - started)
        if keys is None:  # a poll; a relay's read-back is no measure of the device
            answered = len(plan) - self._failures
            self._health.polled(answered, self._failures, self._reason, steady())
        return samples

    async def write(self, key: str, value: Value) -> None:
        point = self._points.get(key)
        if point is None or not point.writable:
            raise WriteError(f"{self._config.name}: no writable point {key!r}")
        unit = self._config.unit_id
        # A write switches a relay (a matrix row's effect, a watchdog's heartbeat): it goes
        # before the polls queued on a shared line, after the exchange in progress.
        async with self._line.lock.turn(urgent=True):
            try:
                if point.table == "coil":
                    reply = await self._line.request(
                        lambda: self._client.write_coil(point.address, bool(value), device_id=unit),
                        self._config.timeout,
                    )
                else:
                    words = encode(
                        float(value), point.type, point.byte_order, point.scale, point.offset
                    )
                    reply = await self._line.request(
                        lambda: self._client.write_registers(point.address, words, device_id=unit),
                        self._config.timeout,
                    )
            except (ModbusException, ValueError, OSError) as err:
                raise WriteError(f"{self._config.name}.{key}: {err}") from err
            if reply.isError():
                raise WriteError(f"{self._config.name}.{key}: {_describe_error(reply)}")

    async def close(self) -> None:
        """Let go of the line; the last device on it closes the connection."""
        if not self._closed:
            self._closed = True
            self._lines.release(self._line_key, self._config.name, self._line)

    def _plan_for(self, keys: Collection[str]) -> list[ReadBlock]:
        unknown = set(keys) - self._points.keys()
        if unknown:
            raise KeyError(f"{self._config.name}: unknown points {sorted(unknown)}")
        return plan_reads(
            (self._points[k] for k in keys),
            self._config.optimization,
            self._config.max_register_fill,
            self._config.workarounds,
        )

    async def _read_block(self, block: ReadBlock) -> list[Sample]:
        read = self._readers[block.table]
        try:
            reply = await self._line.request(
                lambda: read(block.start, count=block.count, device_id=self._config.unit_id),
                self._config.timeout,
            )
        except NotConnected:
            return self._bad_block(block, "not connected")
        except ReplyError as err:
            return self._bad_block(block, err.reason)
        except (ModbusException, OSError) as err:
            return self._bad_block(block, f"no reply: {err}")
        now, mono = time.time(), steady()
        if reply.isError():
            return self._bad_block(block, _describe_error(reply))
        if block.table in BIT_TABLES:
            bits = list(reply.bits)
            if len(bits) < block.count:
                return self._bad_block(block, f"short reply: {len(bits)} of {block.count} bits")
            return [
                Sample.good(self._ids[k], bits[self._points[k].address - block.start], now, mono)
                for k in block.keys
            ]
        words = reply.registers
        if len(words) != block.count:
            return self._bad_block(
                block, f"reply has {len(words)} registers, asked for {block.count}"
            )
        samples: list[Sample] = []
        for point in self._layout(block):
            value, reason = evaluate(words, point.address - block.start, point)
            if reason is None:
                samples.append(Sample(self._ids[point.key], value, GOOD, now, mono))
            else:
                samples.append(Sample.bad(self._ids[point.key], now, mono, reason))
        return samples

    def _layout(self, block: ReadBlock) -> list[ModbusPoint]:
        layout = self._layouts.get(block)
        if layout is None:
            layout = self._layouts[block] = [self._points[k] for k in block.keys]
        return layout

    def _bad_block(self, block: ReadBlock, reason: str) -> list[Sample]:
        # Counted for the device's health, which logs once per change, not per request.
        self._failures += 1
        self._reason = f"{block.table} {block.start}+{block.count}: {reason}"
        now, mono = time.time(), steady()
        return [Sample.bad(self._ids[k], now, mono, reason) for k in block.keys]


def _describe_error(reply: ModbusPDU) -> str:
    code = getattr(reply, "exception_code", None)
    return f"exception response, code {code}" if code is not None else f"error reply {reply}"


registry.register("modbus", ModbusConfig, ModbusDriver, check_shared_lines)
# The deprecated flat form: its tables validate (and are rewritten) through the same model.
registry.register(DEPRECATED_DRIVER, ModbusConfig, ModbusDriver, check_shared_lines)

"""Modbus TCP driver: block reads planned once, bad quality instead of exceptions.

name: modbus_tcp
library: pymodbus >= 3.16 (client calls take ``device_id=``)
mode: polling
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from drivers import registry
from drivers.base import WriteError
from drivers.modbus_codec import encode
from drivers.modbus_config import ModbusPoint, ModbusTcpConfig
from drivers.modbus_plan import BIT_TABLES, ReadBlock, plan_reads
from drivers.modbus_quality import evaluate
from vocab.ids import point_id
from vocab.samples import GOOD, Sample, Value

_logger = logging.getLogger(__name__)


class ModbusTcpDriver:
    def __init__(self, config: ModbusTcpConfig) -> None:
        self._config = config
        self._points = {p.key: p for p in config.points}
        self._ids = {p.key: point_id(config.name, p.key) for p in config.points}
        self._plan = plan_reads(
            config.points, config.optimization, config.max_register_fill, config.workarounds
        )
        # reconnect_delay=0 switches pymodbus' own reconnect off: we pace reconnects here,
        # so that a dead device costs one failed connect per backoff step, not per poll.
        self._client = AsyncModbusTcpClient(
            config.host,
            port=config.port,
            timeout=config.timeout,
            retries=0,
            reconnect_delay=0,
        )
        self._readers = {
            "holding": self._client.read_holding_registers,
            "input": self._client.read_input_registers,
            "coil": self._client.read_coils,
            "discrete_input": self._client.read_discrete_inputs,
        }
        self._lock = asyncio.Lock()
        self._failing: dict[ReadBlock, str] = {}
        self._layouts: dict[ReadBlock, list[ModbusPoint]] = {}
        self._backoff = config.reconnect_min
        self._next_connect = 0.0

    @property
    def plan(self) -> list[ReadBlock]:
        return list(self._plan)

    async def read(self, keys: Collection[str] | None = None) -> list[Sample]:
        plan = self._plan if keys is None else self._plan_for(keys)
        async with self._lock:
            if not await self._ensure_connected():
                now = time.time()
                return [
                    Sample.bad(self._ids[k], now, "not connected") for b in plan for k in b.keys
                ]
            samples: list[Sample] = []
            for block in plan:
                samples.extend(await self._read_block(block))
            return samples

    async def write(self, key: str, value: Value) -> None:
        point = self._points.get(key)
        if point is None or not point.writable:
            raise WriteError(f"{self._config.name}: no writable point {key!r}")
        async with self._lock:
            if not await self._ensure_connected():
                raise WriteError(f"{self._config.name}: not connected")
            try:
                if point.table == "coil":
                    reply = await self._client.write_coil(
                        point.address, bool(value), device_id=self._config.unit_id
                    )
                else:
                    words = encode(
                        float(value), point.type, point.byte_order, point.scale, point.offset
                    )
                    reply = await self._client.write_registers(
                        point.address, words, device_id=self._config.unit_id
                    )
            except (ModbusException, ValueError, OSError) as err:
                self._drop_connection_if_lost()
                raise WriteError(f"{self._config.name}.{key}: {err}") from err
            if reply.isError():
                raise WriteError(f"{self._config.name}.{key}: {_describe_error(reply)}")

    async def close(self) -> None:
        self._client.close()

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

    async def _ensure_connected(self) -> bool:
        if self._client.connected:
            return True
        now = time.monotonic()
        if now < self._next_connect:
            return False
        connected = await self._client.connect()
        if connected:
            if self._backoff > self._config.reconnect_min:
                _logger.info("modbus device %s reconnected", self._config.name)
            self._backoff = self._config.reconnect_min
            return True
        _logger.warning(
            "modbus device %s at %s:%s unreachable, next try in %.1f s",
            self._config.name,
            self._config.host,
            self._config.port,
            self._backoff,
        )
        self._next_connect = now + self._backoff
        self._backoff = min(self._backoff * 2, self._config.reconnect_max)
        return False

    def _drop_connection_if_lost(self) -> None:
        if not self._client.connected:
            self._next_connect = time.monotonic() + self._backoff

    async def _read_block(self, block: ReadBlock) -> list[Sample]:
        try:
            reply = await self._readers[block.table](
                block.start, count=block.count, device_id=self._config.unit_id
            )
        except (ModbusException, OSError) as err:
            self._drop_connection_if_lost()
            return self._bad_block(block, f"no reply: {err}")
        now = time.time()
        if reply.isError():
            return self._bad_block(block, _describe_error(reply))
        if block.table in BIT_TABLES:
            bits = list(reply.bits)
            if len(bits) < block.count:
                return self._bad_block(block, f"short reply: {len(bits)} of {block.count} bits")
            self._block_ok(block)
            return [
                Sample.good(self._ids[k], bits[self._points[k].address - block.start], now)
                for k in block.keys
            ]
        words = reply.registers
        if len(words) != block.count:
            return self._bad_block(
                block, f"reply has {len(words)} registers, asked for {block.count}"
            )
        self._block_ok(block)
        samples: list[Sample] = []
        for point in self._layout(block):
            value, reason = evaluate(words, point.address - block.start, point)
            if reason is None:
                samples.append(Sample(self._ids[point.key], value, GOOD, now))
            else:
                samples.append(Sample.bad(self._ids[point.key], now, reason))
        return samples

    def _layout(self, block: ReadBlock) -> list[ModbusPoint]:
        layout = self._layouts.get(block)
        if layout is None:
            layout = self._layouts[block] = [self._points[k] for k in block.keys]
        return layout

    def _block_ok(self, block: ReadBlock) -> None:
        if self._failing.pop(block, None) is not None:
            _logger.info(
                "modbus device %s: %s %d+%d answers again",
                self._config.name,
                block.table,
                block.start,
                block.count,
            )

    def _bad_block(self, block: ReadBlock, reason: str) -> list[Sample]:
        # Say it once when it starts (or changes), not on every poll of a dead device.
        if self._failing.get(block) != reason:
            self._failing[block] = reason
            _logger.warning(
                "modbus device %s: %s %d+%d: %s",
                self._config.name,
                block.table,
                block.start,
                block.count,
                reason,
            )
        now = time.time()
        return [Sample.bad(self._ids[k], now, reason) for k in block.keys]


def _describe_error(reply: ModbusPDU) -> str:
    code = getattr(reply, "exception_code", None)
    return f"exception response, code {code}" if code is not None else f"error reply {reply}"


registry.register("modbus_tcp", ModbusTcpConfig, ModbusTcpDriver)

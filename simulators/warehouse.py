"""The warehouse on a Modbus TCP port: zone sensors on one unit, a relay module on another.

Given a serial device path as well (``rtu_port``, e.g. one end of a ``PtyPair``), the same
two units also answer as RTU slaves on that line, the same warehouse behind both.

Register map (protocol addresses, zero-based), zone ``i`` of the scenario at base ``10*i``:

unit 1, sensors      holding base+0  temperature, int16, 0.1 degC
                     holding base+1  relative humidity, uint16, 0.1 %RH
                     holding base+2  temperature, float32, high word first (2 registers)
                     holding base+4  hydrogen, uint16, ppm
                     holding base+5  carbon monoxide, uint16, ppm
                     holding base+6  hydrogen fluoride, uint16, 0.01 ppm
                     holding base+7  smoke detector 1, uint16, 0.001 %obs/m
                     holding base+8  smoke detector 2, uint16, 0.001 %obs/m
                     holding base+9  smoke detector 3, uint16, 0.001 %obs/m
                     discrete input i  abort button of zone i (held = true)
unit 2, relay module see simulators/relay_module.py: coils 0-15, contactor feedback on
                     discrete inputs 0-15, airflow switches on 16-31, host watchdog on
                     holding registers 0 (heartbeat) and 1 (timeout, seconds)

The physics advance on a fixed simulated step; every Modbus request sees the state of
that moment, and a coil write reaches the physics at once (fan on -> zone cools).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.physics import Zone
from simulators.relay_module import CHANNELS, ChannelSetup, RelayModule
from simulators.scenario import Scenario

_logger = logging.getLogger(__name__)

SENSOR_UNIT = 1
RELAY_UNIT = 2
ZONE_STRIDE = 10
_FC_READ_COILS, _FC_READ_DISCRETE, _FC_READ_HOLDING = 1, 2, 3
_FC_WRITE_COIL, _FC_WRITE_REGISTER, _FC_WRITE_COILS, _FC_WRITE_REGISTERS = 5, 6, 15, 16
_TICK = 0.1


_STEP_SETTINGS = (
    "heat_load",
    "humidity_load",
    "temperature",
    "h2_load",
    "co_load",
    "hf_load",
    "smoke_load",
    "abort_pressed",
)


def _u16(value: float) -> int:
    return max(0, min(0xFFFF, round(value)))


def _float_words(value: float) -> tuple[int, int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return hi, lo


class Warehouse:
    """Scenario playback plus the register image the Modbus server serves."""

    def __init__(self, scenario: Scenario, say: Callable[[float, str], None] | None = None):
        self.scenario = scenario
        self.zones = [z.build() for z in scenario.zones]
        self.elapsed = 0.0
        setup = scenario.relay_module
        channels = setup.channels or [
            ChannelSetup(channel=i, zone=z.name) for i, z in enumerate(scenario.zones)
        ]
        self.module = RelayModule(
            channels={c.channel: c for c in channels},
            airflow_delay=setup.airflow_delay,
            watchdog=setup.watchdog,
        )
        self._steps = sorted(scenario.steps, key=lambda s: s.at)
        self._say = say or (lambda _t, _text: None)

    @property
    def finished(self) -> bool:
        return self.elapsed >= self.scenario.duration

    def zone(self, name: str) -> Zone:
        return next(z for z in self.zones if z.name == name)

    def advance(self, dt: float) -> None:
        while self._steps and self._steps[0].at <= self.elapsed:
            step = self._steps.pop(0)
            if step.zone is not None:
                zone = self.zone(step.zone)
                for name in _STEP_SETTINGS:
                    value = getattr(step, name)
                    if value is not None:
                        setattr(zone, name, value)
                if step.panel_state is not None:
                    zone.panel_state = None if step.panel_state == "auto" else step.panel_state
                if step.detector_stuck is not None:
                    detector, reading = step.detector_stuck
                    zone.stuck_detectors[detector] = reading
            if step.say:
                self._say(self.elapsed, step.say)
        self.module.check_watchdog()
        self.module.advance(self.elapsed)
        for zone in self.zones:
            outputs = [c for c in self.module.channels.values() if c.zone == zone.name]
            zone.fan_on = any(self.module.runs(c.channel) for c in outputs if c.output == "fan")
            zone.deluge_on = any(
                self.module.runs(c.channel) for c in outputs if c.output == "deluge"
            )
            zone.step(dt)
        self.elapsed += dt

    @property
    def relays(self) -> list[bool]:
        """Coil values, channel by channel."""
        return self.module.coils

    @property
    def stuck_relays(self) -> set[int]:
        return self.module.stuck

    def sensor_registers(self) -> list[int]:
        regs = [0] * (ZONE_STRIDE * len(self.zones))
        for index, zone in enumerate(self.zones):
            base = ZONE_STRIDE * index
            regs[base] = round(zone.temperature * 10) & 0xFFFF
            regs[base + 1] = max(0, min(1000, round(zone.humidity * 10)))
            regs[base + 2], regs[base + 3] = _float_words(zone.temperature)
            regs[base + 4] = _u16(zone.h2)
            regs[base + 5] = _u16(zone.co)
            regs[base + 6] = _u16(zone.hf * 100)
            for detector in (1, 2, 3):
                regs[base + 6 + detector] = _u16(zone.detector(detector) * 1000)
        return regs


class WarehouseServer:
    """Serves ``warehouse`` on ``host:port`` (Modbus TCP) and, when ``rtu_port`` names a
    serial device path, as RTU slaves on it too (``rtu_baudrate`` bits per second, 8N1)."""

    def __init__(
        self,
        warehouse: Warehouse,
        host: str,
        port: int,
        speed: float = 1.0,
        *,
        rtu_port: str | None = None,
        rtu_baudrate: int = 19200,
    ) -> None:
        self.warehouse = warehouse
        self.host = host
        self.port = port
        self.speed = speed
        self.rtu_port = rtu_port
        self._server = ModbusTcpServer(self._devices(), address=(host, port))
        # Register images of its own (each server keeps one), filled from the same
        # warehouse by the same actions on every request.
        self._rtu = (
            ModbusSerialServer(self._devices(), port=rtu_port, baudrate=rtu_baudrate)
            if rtu_port is not None
            else None
        )
        self._tasks: list[asyncio.Task[None]] = []

    def _devices(self) -> list[SimDevice]:
        words = ZONE_STRIDE * len(self.warehouse.zones)
        return [
            SimDevice(
                id=SENSOR_UNIT, simdata=register_blocks(16, words), action=self._sensor_action
            ),
            SimDevice(
                id=RELAY_UNIT, simdata=register_blocks(2 * CHANNELS, 2), action=self._relay_action
            ),
        ]

    async def _sensor_action(
        self,
        function_code: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code == _FC_READ_DISCRETE:
            pressed = [z.abort_pressed for z in self.warehouse.zones]
            registers[0] = sum(1 << i for i, on in enumerate(pressed[:16]) if on)
            return None
        image = self.warehouse.sensor_registers()
        registers[start : start + len(image)] = image
        return None

    async def _relay_action(
        self,
        function_code: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        # Bits are packed 16 to a register, bit 0 first: coils in the coil block, then
        # contactor and airflow inputs in the discrete-input block.
        module = self.warehouse.module
        if function_code in (_FC_WRITE_COIL, _FC_WRITE_COILS) and set_values is not None:
            for offset, value in enumerate(set_values):
                module.write(address + offset, bool(value))
        if function_code in (_FC_WRITE_REGISTER, _FC_WRITE_REGISTERS) and set_values is not None:
            for offset, value in enumerate(set_values):
                if address + offset == 0:
                    module.heartbeat()
                elif address + offset == 1:
                    module.watchdog = float(int(value))
        if function_code == _FC_READ_DISCRETE:
            bits = module.inputs(self.warehouse.elapsed)
        elif function_code in (_FC_READ_HOLDING, _FC_WRITE_REGISTER, _FC_WRITE_REGISTERS):
            registers[0:2] = [registers[0], int(module.watchdog)]
            return None
        else:
            bits = module.coils
        registers[0] = sum(1 << i for i, on in enumerate(bits[:16]) if on)
        registers[1] = sum(1 << i for i, on in enumerate(bits[16:32]) if on)
        return None

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._server.serve_forever(), name="modbus-sim"))
        if self._rtu is not None:
            self._tasks.append(asyncio.create_task(self._rtu.serve_forever(), name="modbus-rtu"))
        self._tasks.append(asyncio.create_task(self._physics(), name="physics"))
        deadline = time.monotonic() + 10
        while (
            self._server.transport is None
            or not await _listening(self.host, self.port)
            or not self._rtu_open()
        ):
            failed = [t for t in self._tasks if t.done()]
            if failed or time.monotonic() > deadline:
                await self.stop()
                why = failed[0].exception() if failed and not failed[0].cancelled() else None
                raise OSError(
                    f"simulator cannot serve on {self.host}:{self.port}: "
                    f"{why or 'not listening after 10 s'} (a port in use? a host not local?)"
                )
            await asyncio.sleep(0.05)

    def _rtu_open(self) -> bool:
        return self._rtu is None or self._rtu.transport is not None

    async def stop(self) -> None:
        if self._rtu is not None:
            await self._rtu.shutdown()  # type: ignore[no-untyped-call]
        await self._server.shutdown()  # type: ignore[no-untyped-call]
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _physics(self) -> None:
        next_tick = time.monotonic()
        while True:
            self.warehouse.advance(_TICK)
            next_tick += _TICK / self.speed
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))


def register_blocks(
    bits: int, words: int
) -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
    """Coils, discrete inputs, holding and input registers, each starting at address 0."""

    def bit_block() -> list[SimData]:
        return [SimData(0, count=bits, values=False, datatype=DataType.BITS)]

    def word_block() -> list[SimData]:
        return [SimData(0, count=words, values=0, datatype=DataType.REGISTERS)]

    return bit_block(), bit_block(), word_block(), word_block()


async def _listening(host: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True

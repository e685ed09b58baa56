"""The driver against a device that refuses reads over 61 registers, sends its registers
byte-swapped ("BADC") and reports "not available" in-band."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from drivers.modbus import ModbusDriver
from drivers.modbus_config import ModbusConfig, ModbusPoint, ModbusWorkarounds, TcpTransport
from simulators.misbehaving import Faults, MisbehavingServer
from tests.lab import read_polls
from vocab.samples import Quality, Sample

LEVELS = 100  # uint16 points at holding 0..99


def quirky_config(port: int, **workarounds: object) -> ModbusConfig:
    return ModbusConfig(
        name="racks",
        driver="modbus",
        transport=TcpTransport(type="tcp", host="127.0.0.1", port=port),
        timeout=0.5,
        workarounds=ModbusWorkarounds.model_validate(workarounds),
        points=[
            *(
                ModbusPoint(key=f"level_{i}", address=i, type="uint16", byte_order="BADC")
                for i in range(LEVELS)
            ),
            ModbusPoint(
                key="cell_temp",
                address=100,
                type="int32",
                byte_order="BADC",
                scale=0.1,
                not_available=(0x80000000,),
            ),
            ModbusPoint(
                key="rh", address=102, type="uint16", byte_order="BADC", valid_range=(0, 100)
            ),
        ],
    )


def read_once(config: ModbusConfig) -> tuple[int, dict[str, Sample]]:
    async def go() -> tuple[int, dict[str, Sample]]:
        async with MisbehavingServer(faults=Faults(max_registers=61, byte_swap=True)) as device:
            # byte_swap puts each register on the wire as "BADC": the tables hold values in
            # the protocol's order and the points say "BADC".
            for i in range(LEVELS):
                device.set_value(i, 1000 + i, "uint16")
            device.set_not_available(100, "int32")
            device.set_value(102, 12000, "uint16")
            transport = TcpTransport(type="tcp", host="127.0.0.1", port=device.port)
            driver = ModbusDriver(config.model_copy(update={"transport": transport}))
            [samples] = await read_polls(driver)
            return len(driver.plan), {s.point: s for s in samples}

    return asyncio.run(go())


def test_with_the_cap_every_point_reads_and_sentinels_are_bad() -> None:
    requests, samples = read_once(quirky_config(502, max_registers_per_request=61))
    assert requests == 2
    levels = [samples[f"racks.level_{i}"] for i in range(LEVELS)]
    assert all(s.quality is Quality.GOOD for s in levels)
    assert [s.value for s in levels] == [1000 + i for i in range(LEVELS)]
    temp = samples["racks.cell_temp"]
    assert temp.quality is Quality.BAD and temp.value is None
    assert temp.reason == "not available (0x80000000)"
    rh = samples["racks.rh"]
    assert rh.quality is Quality.BAD
    assert rh.reason == "12000 outside the valid range 0..100"


def test_without_the_cap_the_merged_read_is_refused() -> None:
    requests, samples = read_once(quirky_config(502))
    assert requests == 1
    assert {s.quality for s in samples.values()} == {Quality.BAD}
    assert {s.reason for s in samples.values()} == {"exception response, code 3"}


def test_word_order_still_reads_and_must_agree_with_byte_order() -> None:
    legacy = ModbusPoint(key="a", address=0, type="float32", word_order="little")
    assert legacy.byte_order == "CDAB"
    assert ModbusPoint(key="b", address=0, byte_order="DCBA").word_order == "little"
    with pytest.raises(ValidationError, match="contradicts"):
        ModbusPoint(key="c", address=0, word_order="big", byte_order="CDAB")


def test_workarounds_are_checked_against_the_points() -> None:
    with pytest.raises(ValidationError, match="'racks': point 'cell_temp'"):
        quirky_config(502, max_registers_per_request=1)
    with pytest.raises(ValidationError, match="less than or equal to 125"):
        quirky_config(502, max_registers_per_request=126)
    with pytest.raises(ValidationError, match="Extra inputs"):
        quirky_config(502, max_register_per_request=61)

"""The ``transport`` union of a Modbus device table, the deprecated flat form, and the
checks across devices that share one line."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from pydantic import ValidationError

from drivers.modbus_config import ModbusConfig, RtuOverTcpTransport, RtuTransport, TcpTransport
from gateway.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[3]
POINTS = [{"key": "temperature", "address": 0}]


def table(name: str = "sensors", **keys: Any) -> dict[str, Any]:
    return {"name": name, "driver": "modbus", "points": POINTS, **keys}


def rtu(port: str = "/dev/ttyUSB0", **keys: Any) -> dict[str, Any]:
    return {"type": "rtu", "port": port, **keys}


def load(tmp_path: Path, *devices: dict[str, Any]) -> list[str]:
    """The problem lines for a minimal site file with ``devices``; [] if it loads."""
    data = {"gateway": {"site": "plant-a", "id": "gw-01", "data_dir": str(tmp_path)}}
    path = tmp_path / "site.toml"
    path.write_text(tomli_w.dumps({**data, "devices": list(devices)}))
    try:
        load_settings(path, base=None)
    except ConfigError as err:
        return err.lines()
    return []


def test_each_transport_validates_with_its_defaults() -> None:
    tcp = ModbusConfig.model_validate(table(transport={"type": "tcp", "host": "10.0.0.5"}))
    over = ModbusConfig.model_validate(
        table(transport={"type": "rtu_over_tcp", "host": "10.0.0.6", "port": 4001})
    )
    serial = ModbusConfig.model_validate(table(transport=rtu(baudrate=9600, parity="E")))
    assert tcp.transport == TcpTransport(type="tcp", host="10.0.0.5", port=502)
    assert tcp.transport.line is None  # a TCP device has a connection of its own
    assert over.transport == RtuOverTcpTransport(type="rtu_over_tcp", host="10.0.0.6", port=4001)
    assert over.transport.line == ("rtu_over_tcp", "10.0.0.6", "4001")
    assert serial.transport == RtuTransport(
        type="rtu", port="/dev/ttyUSB0", baudrate=9600, bytesize=8, parity="E", stopbits=1
    )
    assert serial.transport.line == ("rtu", "/dev/ttyUSB0")


def test_a_bad_transport_value_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError, match="parity"):
        ModbusConfig.model_validate(table(transport=rtu(parity="X")))
    with pytest.raises(ValidationError, match="host"):
        ModbusConfig.model_validate(table(transport={"type": "tcp"}))


def test_a_misspelt_transport_key_names_its_path(tmp_path: Path) -> None:
    lines = load(tmp_path, table(transport=rtu(baudrat=9600)))
    assert lines == ["site.toml: devices[0].transport.baudrat: unknown key"]


def test_an_unknown_transport_type_names_its_path(tmp_path: Path) -> None:
    lines = load(tmp_path, table(transport={"type": "serial", "port": "/dev/ttyS0"}))
    assert lines == [
        "site.toml: devices[0].transport.type: unknown type 'serial', "
        "expected one of 'tcp', 'rtu_over_tcp', 'rtu'"
    ]


def test_an_unknown_driver_names_its_path(tmp_path: Path) -> None:
    lines = load(tmp_path, table(driver="profibus"))
    assert lines[0].startswith("site.toml: devices[0].driver: unknown driver 'profibus'")


def test_the_deprecated_flat_form_maps_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = table("old-sensors", driver="modbus_tcp", host="10.0.0.7", port=5020, unit_id=3)
    path = tmp_path / "site.toml"
    data = {"gateway": {"site": "plant-a", "id": "gw-01", "data_dir": str(tmp_path)}}
    path.write_text(tomli_w.dumps({**data, "devices": [old]}))
    with caplog.at_level(logging.WARNING, logger="drivers.modbus_config"):
        settings = load_settings(path, base=None)
    (device,) = settings.devices
    assert isinstance(device, ModbusConfig)
    assert device.driver == "modbus"
    assert device.transport == TcpTransport(type="tcp", host="10.0.0.7", port=5020)
    assert device.unit_id == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "old-sensors" in warnings[0]
    assert 'driver = "modbus"' in warnings[0] and 'type = "tcp"' in warnings[0]


def test_the_deprecated_form_does_not_take_a_transport_table() -> None:
    with pytest.raises(ValidationError, match='write driver = "modbus"'):
        ModbusConfig.model_validate(
            table(driver="modbus_tcp", transport={"type": "tcp", "host": "10.0.0.7"})
        )


def test_units_on_one_serial_port_load_together(tmp_path: Path) -> None:
    assert (
        load(
            tmp_path,
            table("gas-1", unit_id=1, transport=rtu(baudrate=9600)),
            table("gas-2", unit_id=2, transport=rtu(baudrate=9600)),
            table("other-line", unit_id=1, transport=rtu("/dev/ttyUSB1")),
        )
        == []
    )


def test_units_on_one_port_must_agree_on_its_settings(tmp_path: Path) -> None:
    lines = load(
        tmp_path,
        table("gas-1", unit_id=1, transport=rtu(baudrate=9600)),
        table(
            "gas-2",
            unit_id=2,
            transport=rtu(baudrate=19200, stopbits=2),
            timeout=2.0,  # each unit may wait for its replies as long as it needs
            reconnect_min=2.0,
        ),
    )
    assert lines == [
        "site.toml: devices[1].transport.baudrate: 19200 differs from 9600 of device 'gas-1' "
        "on the same line /dev/ttyUSB0",
        "site.toml: devices[1].transport.stopbits: 2 differs from 1 of device 'gas-1' "
        "on the same line /dev/ttyUSB0",
        "site.toml: devices[1].reconnect_min: 2.0 differs from 0.5 of device 'gas-1' "
        "on the same line /dev/ttyUSB0",
    ]


def test_units_on_one_line_must_not_share_a_unit_id(tmp_path: Path) -> None:
    converter = {"type": "rtu_over_tcp", "host": "10.0.0.9", "port": 4001}
    lines = load(
        tmp_path,
        table("gas-1", unit_id=5, transport=converter),
        table("gas-2", unit_id=5, transport=converter),
        # TCP devices have connections of their own: the same unit id is fine there.
        table("tcp-1", unit_id=5, transport={"type": "tcp", "host": "10.0.0.9"}),
        table("tcp-2", unit_id=5, transport={"type": "tcp", "host": "10.0.0.9"}),
    )
    assert lines == [
        "site.toml: devices[1].unit_id: unit id 5 is also device 'gas-1' "
        "on the same line 10.0.0.9:4001 (RTU over TCP)"
    ]


def test_the_sample_block_shows_both_transport_kinds() -> None:
    sample = tomllib.loads((ROOT / "config" / "drivers" / "modbus.toml").read_text())
    devices = [ModbusConfig.model_validate(d) for d in sample["devices"]]
    assert [type(d.transport) for d in devices] == [TcpTransport, RtuTransport]


def test_the_opcua_sample_block_loads() -> None:
    from drivers.opcua_config import Basic256Sha256, OpcuaConfig, UserName

    sample = tomllib.loads((ROOT / "config" / "drivers" / "opcua.toml").read_text())
    devices = [OpcuaConfig.model_validate(d) for d in sample["devices"]]
    assert [type(d.security) for d in devices] == [Basic256Sha256]
    assert [type(d.identity) for d in devices] == [UserName]
    assert [p.key for p in devices[0].point_infos()] == [
        "zone1-state",
        "zone1-smoke",
        "silence",
        "zone1-fire",
    ]


def test_every_driver_sample_block_loads_through_its_model() -> None:
    from drivers import registry
    from drivers.modbus_config import DEPRECATED_DRIVER

    files = sorted((ROOT / "config" / "drivers").glob("*.toml"))
    # One sample block per driver, named after it (the deprecated alias has none).
    assert {f.stem for f in files} == set(registry.names()) - {DEPRECATED_DRIVER}
    for path in files:
        for device in tomllib.loads(path.read_text())["devices"]:
            registry.lookup(device["driver"]).config_model.model_validate(device)

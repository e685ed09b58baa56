"""The scanner's config model and its sample block agree; bad tables name the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from drivers.scanner_config import ScannerConfig, SerialScannerTransport, TcpScannerTransport

SAMPLE = Path(__file__).resolve().parents[3] / "config" / "drivers" / "scanner.toml"


def test_every_commented_default_in_the_sample_is_the_models_default() -> None:
    device = ScannerConfig.model_validate(tomllib.loads(SAMPLE.read_text())["devices"][0])
    transport_keys = set(SerialScannerTransport.model_fields)
    shown = re.findall(r"^\s*# (\w+) = (.+)$", SAMPLE.read_text(), re.MULTILINE)
    assert len(shown) >= 12
    for key, literal in shown:
        value = tomllib.loads(f"v = {literal}")["v"]
        where: Any = device.transport if key in transport_keys else device
        assert getattr(where, key) == value, key


@pytest.mark.parametrize(
    ("table", "where"),
    [
        ({"transport": {"type": "usb", "port": "x"}}, "transport"),
        ({"transport": {"type": "tcp", "host": "h"}}, "transport.tcp.port"),
        ({"framing": "etx"}, "framing"),
        ({"reconnect_min": 5.0, "reconnect_max": 1.0}, ""),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_tables_name_the_key(table: dict[str, Any], where: str) -> None:
    base = {"name": "dock-1", "driver": "scanner", "transport": {"type": "serial", "port": "p"}}
    with pytest.raises(ValidationError) as caught:
        ScannerConfig.model_validate({**base, **table})
    locations = [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]
    assert any(loc.startswith(where) for loc in locations), locations


def test_tcp_transport() -> None:
    config = ScannerConfig.model_validate(
        {
            "name": "gate",
            "driver": "scanner",
            "transport": {"type": "tcp", "host": "h", "port": 4001},
        }
    )
    assert isinstance(config.transport, TcpScannerTransport)
    assert config.transport.describe() == "h:4001"

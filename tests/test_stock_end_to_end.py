"""The stock logic in a running gateway: a reader on a pseudo-terminal, a real Mosquitto,
a WMS subscriber. A misplacement is alarmed at once with the broker down and reaches the
WMS when it is back; the master comes over the signed, retained downlink, and a copy with
a bad signature is refused."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.uplink.signing import new_nonce, sign
from simulators.mosquitto import MosquittoBroker
from simulators.scanner_port import ScannerPort
from tests.conftest import Lab
from tests.lab import cli, wait_until, write_config

ROOT = Path(__file__).resolve().parent.parent
BASE = "cellsafe/plant-a/gw-01"
STOCK_KEY = "wms-stock-key-0123456789abcdef0123456"
ELECTROLYTE = "]C10104012345000023\x1d10E77\x1d3704"


def gateway_config(tmp_path: Path, port: int, reader: Path) -> Path:
    data: dict[str, Any] = {
        "gateway": {"site": "plant-a", "id": "gw-01", "data_dir": str(tmp_path / "state")},
        "mqtt": {"host": "127.0.0.1", "port": port},
        "commands": {"principals": {"wms-stock": {"classes": ["stock"]}}},
        "stock": {"master_file": str(ROOT / "config" / "stock-master.toml")},
        "devices": [
            {
                "name": "dock-1",
                "driver": "scanner",
                "transport": {"type": "serial", "port": str(reader)},
                "reject_signal": "\u0007",
                "reconnect_min": 0.05,
            }
        ],
    }
    return write_config(tmp_path, data)


def publish_master(port: int, key: str, version: int) -> None:
    master = tomllib.loads((ROOT / "config" / "stock-master.toml").read_text())
    master["version"] = version
    master["zones"]["cell-store"]["allowed_classes"] = ["9", "3"]
    token = sign(
        key.encode(),
        "wms-stock",
        BASE,
        "stock-master",
        {"master": master},
        request_id=f"master-{version}",
        issued_at=int(time.time()),
        nonce=new_nonce(),
    )
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"wms-master-{version}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        info = client.publish(
            f"{BASE}/downlink/stock-master", json.dumps({"jws": token}), qos=1, retain=True
        )
        info.wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def of_type(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


@pytest.mark.integration
def test_misplacement_alarmed_with_the_broker_down_and_the_master_over_mqtt(
    tmp_path: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    with ScannerPort(tmp_path / "usb-reader-if00") as adapter:
        wms = lab.wms(broker.port)
        env = {"CELLSAFE_COMMANDS__KEYS__WMS_STOCK": STOCK_KEY}
        config = gateway_config(tmp_path, broker.port, adapter.link)
        gateway = lab.gateway(config, env)
        log = tmp_path / "gateway.log"
        wait_until(lambda: "dock-1 connected" in log.read_text(), 20, "the reader to open")
        # A push source has no poller: its link is what cellsafe status shows of it.
        assert "device dock-1: scanner connected" in cli("status", "--config", str(config)).stdout
        wait_until(lambda: "state/status" in str(wms.state) or bool(wms.state), 10, "birth")

        broker.stop()  # the WMS is away from here on
        for text in ("CMD:PUTAWAY", "C-02", ELECTROLYTE):
            adapter.send(text.encode() + b"\r")
        assert adapter.received(5) == b"\x07"  # refused at the reader, at once
        wait_until(
            lambda: "event 2 alarm.raised stock.putaway.misplaced" in log.read_text(),
            10,
            "the misplacement alarm while the broker is down",
        )

        broker.start()  # back: the outbox delivers what waited
        messages = wms.wait_for(2, 20)
        stored = of_type(messages, "stock.stored")[0]
        assert stored["misplacement"]["alarm"] == "stock.putaway.misplaced"
        assert stored["epcis"]["disposition"] == "non_conformant"
        raised = of_type(messages, "alarm.raised")[0]
        assert raised["alarm"]["id"] == "stock.putaway.misplaced"
        assert raised["seq"] == stored["seq"] + 1

        publish_master(broker.port, "not-the-key-0123456789abcdef01234567", 5)
        publish_master(broker.port, STOCK_KEY, 2)
        messages = wms.wait_for(4, 20)
        refused = of_type(messages, "stock.master_refused")[0]
        assert refused["reason"] == "signature does not match a key of principal 'wms-stock'"
        updated = of_type(messages, "stock.master_updated")[0]
        assert (updated["version"], updated["by"]) == (2, "wms-stock")
        saved = json.loads((tmp_path / "state" / "stock-master.json").read_text())
        assert saved["version"] == 2
        # Version 2 allows class 3 in the cell store: the same put-away is now accepted.
        adapter.send(b"C-03\r" + ELECTROLYTE.encode() + b"\r")
        messages = wms.wait_for(5, 10)
        assert "misplacement" not in of_type(messages, "stock.stored")[-1]
        assert gateway.terminate() == 0

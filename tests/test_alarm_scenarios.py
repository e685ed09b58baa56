"""The alarm engine on real parts: a thermal runaway, operator commands, a kill -9."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.mosquitto import MosquittoBroker
from simulators.net import free_port
from simulators.scenario import Scenario, load_scenario
from tests.conftest import Lab
from tests.lab import cli, wait_until, write_config

pytestmark = pytest.mark.integration

TOKEN = "s3cret-for-tests"


def runaway_config(
    tmp_path: Path, sim_port: int, mqtt_port: int, metrics_port: int | None = None
) -> Path:
    """A cell store on class defaults, with delays shortened so the test runs in a minute."""
    fast = {"on_delay": 1.0}
    metrics = {"listen": f"127.0.0.1:{metrics_port}"} if metrics_port else {}
    return write_config(
        tmp_path,
        {
            "gateway": {"site": "plant-a", "id": "gw-07", "data_dir": str(tmp_path / "state")},
            "mqtt": {"port": mqtt_port},
            "metrics": metrics,
            "devices": [
                {
                    "name": "rack-sensors",
                    "driver": "modbus",
                    "transport": {"type": "tcp", "host": "127.0.0.1", "port": sim_port},
                    "unit_id": 1,
                    "poll_interval": 0.25,
                    "points": [
                        {
                            "key": "temperature",
                            "address": 0,
                            "type": "int16",
                            "scale": 0.1,
                            "unit": "degC",
                        },
                        {"key": "h2", "address": 4, "type": "uint16", "unit": "ppm"},
                        {"key": "co", "address": 5, "type": "uint16", "unit": "ppm"},
                        {"key": "hf", "address": 6, "type": "uint16", "scale": 0.01, "unit": "ppm"},
                        {
                            "key": "smoke",
                            "address": 7,
                            "type": "uint16",
                            "scale": 0.001,
                            "unit": "%obs/m",
                        },
                    ],
                }
            ],
            "zones": [
                {
                    "name": "cell-store",
                    "hazard_class": "cells",
                    "thresholds": [
                        {
                            "point": "rack-sensors.temperature",
                            "quantity": "temperature",
                            **fast,
                            "rate_of_rise": {"per_minute": 8.3, "window": 20.0},
                        },
                        {"point": "rack-sensors.h2", "quantity": "h2", **fast},
                        {"point": "rack-sensors.co", "quantity": "co", **fast},
                        {"point": "rack-sensors.hf", "quantity": "hf", **fast},
                        {"point": "rack-sensors.smoke", "quantity": "smoke", **fast},
                    ],
                }
            ],
        },
    )


def runaway() -> Scenario:
    return load_scenario("thermal_runaway")


def first_raised(events: list[dict[str, Any]]) -> dict[str, int]:
    seen: dict[str, int] = {}
    for event in events:
        if event["type"] == "alarm.raised":
            seen.setdefault(event["alarm"]["id"], event["seq"])
    return seen


def test_thermal_runaway_alarms_come_in_the_order_of_the_fire(
    tmp_path: Path,
    broker: MosquittoBroker,
    lab: Lab,
) -> None:
    sim = lab.sim(runaway(), 1.0)
    wms = lab.wms(broker.port)
    metrics_port = free_port()
    lab.gateway(runaway_config(tmp_path, sim.port, broker.port, metrics_port))

    wait_until(lambda: "cell-store.smoke.high" in first_raised(wms.snapshot()), 75, "smoke")
    raised = first_raised(wms.snapshot())
    off_gas = min(raised[a] for a in ("cell-store.h2.high", "cell-store.co.high"))
    assert off_gas < raised["cell-store.temperature.rate_of_rise"]
    assert (
        raised["cell-store.temperature.rate_of_rise"] < raised["cell-store.temperature.high_high"]
    )
    assert raised["cell-store.temperature.high_high"] < raised["cell-store.smoke.high"]
    rate = next(
        e
        for e in wms.snapshot()
        if e["type"] == "alarm.raised" and e["alarm"]["id"] == "cell-store.temperature.rate_of_rise"
    )
    assert rate["alarm"]["value"] > 8.3  # degC per minute, from the fit
    assert rate["alarm"]["priority"] == "high"
    # The class defaults reached the gateway: cells store high-high is 35 degC.
    hh = next(
        e
        for e in wms.snapshot()
        if e["type"] == "alarm.raised" and e["alarm"]["id"] == "cell-store.temperature.high_high"
    )
    assert hh["alarm"]["limit"] == 35.0

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
        metrics = page.read().decode()
    raised_total = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("cellsafe_alarms_raised_total ")
    )
    assert raised_total >= len(raised)
    assert 'cellsafe_alarms{state="unack"}' in metrics
    assert 'cellsafe_polls_total{device="rack-sensors"}' in metrics


def test_ack_state_survives_kill_and_nothing_is_raised_twice(
    tmp_path: Path,
    broker: MosquittoBroker,
    lab: Lab,
) -> None:
    sim = lab.sim(runaway(), 1.0)
    wms = lab.wms(broker.port)
    config = runaway_config(tmp_path, sim.port, broker.port)
    first = lab.gateway(config)

    wait_until(lambda: "cell-store.temperature.high" in first_raised(wms.snapshot()), 60, "high")
    acked = cli("alarm", "--config", str(config), "ack", "cell-store.h2.high", "--by", "tester")
    assert acked.returncode == 0, acked.stderr
    assert "cell-store.h2.high: acked" in acked.stdout
    refused = cli("alarm", "--config", str(config), "ack", "cell-store.h2.high", "--by", "tester")
    assert refused.returncode == 1
    assert "nothing to acknowledge: it is acked" in refused.stderr

    first.kill()
    second = lab.gateway(config)
    wait_until(
        lambda: cli("alarm", "--config", str(config), "list").returncode == 0,
        20,
        "the restarted gateway's control socket",
    )
    listing = cli("alarm", "--config", str(config), "list").stdout
    states = {
        line.split()[2]: line.split()[0] for line in listing.splitlines() if line.startswith("  ")
    }
    assert states["cell-store.h2.high"] == "acked"
    assert states["cell-store.temperature.high"] == "unack"

    # Smoke comes last in the scenario: by then the restarted gateway has seen it all.
    wait_until(lambda: "cell-store.smoke.high" in first_raised(wms.snapshot()), 60, "smoke")
    raised = [e["alarm"]["id"] for e in wms.snapshot() if e["type"] == "alarm.raised"]
    assert len(raised) == len(set(raised)), raised
    acks = [e for e in wms.snapshot() if e["type"] == "alarm.acknowledged"]
    assert [a["alarm"]["by"] for a in acks] == [{"actor": "operator", "name": "tester via cli"}]
    assert second.alive


class CommandClient:
    def __init__(self, port: int, base: str) -> None:
        self.base = base
        self.replies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="wms-commands")
        self._client.on_connect = lambda c, *_: c.subscribe(f"{base}/replies/+", qos=1)
        self._client.on_subscribe = lambda *_: self._ready.set()
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        assert self._ready.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.replies.append(json.loads(msg.payload))

    def publish(self, name: str, payload: bytes, retain: bool = False) -> None:
        self._client.publish(f"{self.base}/commands/{name}", payload, qos=1, retain=retain)

    def send(self, name: str, payload: bytes | dict[str, Any]) -> dict[str, Any]:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        count = len(self.replies)
        self._client.publish(f"{self.base}/commands/{name}", raw, qos=1)
        wait_until(lambda: len(self.replies) > count, 10, f"a reply to {name}")
        with self._lock:
            return self.replies[-1]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def test_mqtt_commands_with_shared_tokens_are_authorised_validated_and_answered(
    tmp_path: Path,
    broker: MosquittoBroker,
    lab: Lab,
) -> None:
    sim = lab.sim(runaway(), 1.0)
    wms = lab.wms(broker.port)
    gateway = lab.gateway(
        runaway_config(tmp_path, sim.port, broker.port),
        env={"CELLSAFE_COMMANDS__ALARM_TOKEN": TOKEN, "CELLSAFE_COMMANDS__SHARED_TOKENS": "true"},
    )
    wait_until(lambda: "cell-store.h2.high" in first_raised(wms.snapshot()), 60, "h2 high")
    wms_client = CommandClient(broker.port, "cellsafe/plant-a/gw-07")
    try:
        ack = {"alarm": "cell-store.h2.high", "by": "wms-operator"}
        wrong = wms_client.send("ack", {"id": "r1", "token": "guess", "args": ack})
        assert wrong == {"id": "r1", "ok": False, "error": "not authorised: wrong or missing token"}
        garbled = wms_client.send("ack", b"{not json")
        assert garbled["ok"] is False and garbled["error"].startswith("malformed")
        missing = wms_client.send("shelve", {"id": "r3", "token": TOKEN, "args": ack})
        assert missing["ok"] is False and "duration" in missing["error"]
        unknown = wms_client.send(
            "ack", {"id": "r4", "token": TOKEN, "args": {"alarm": "nope", "by": "x"}}
        )
        assert unknown == {"id": "r4", "ok": False, "error": "unknown alarm 'nope'"}
        status = wms_client.send("status", {"id": "r5", "args": {}})
        assert status["error"].startswith("status commands over MQTT are disabled")

        good = wms_client.send("ack", {"id": "r6", "token": TOKEN, "args": ack})
        assert good == {
            "id": "r6",
            "ok": True,
            "alarm": "cell-store.h2.high",
            "state": "acked",
            "events": ["alarm.acknowledged"],
        }
    finally:
        wms_client.close()
    wait_until(
        lambda: any(e["type"] == "alarm.acknowledged" for e in wms.snapshot()),
        10,
        "the acknowledgement on the broker",
    )
    refusals = [e for e in wms.snapshot() if e["type"] == "command.refused"]
    assert len(refusals) == 5
    assert "the unsigned shared-token form is on" in gateway.log.read_text()
    assert refusals[0]["topic"].endswith("/events/command")

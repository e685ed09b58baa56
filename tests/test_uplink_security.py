"""The uplink against a broker run as a site should: TLS, passwords, an ACL, failover."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.mosquitto import MosquittoBroker, SecureListener, write_password_file
from simulators.net import free_port
from tests.conftest import Lab
from tests.lab import (
    ROOT,
    cli,
    outbox_rows,
    quiet_scenario,
    wait_until,
    write_config,
)
from tests.pki import Pki, make_pki
from tests.test_alarm_scenarios import CommandClient

pytestmark = pytest.mark.integration

ACL = """\
user gw-01
topic readwrite cellsafe/plant-a/gw-01/#

# gw-02 may keep its presence and hear commands, but not publish events.
user gw-02
topic write cellsafe/plant-a/gw-02/state/#
topic write cellsafe/plant-a/gw-02/replies/#
topic read cellsafe/plant-a/gw-02/commands/#

user wms
topic read cellsafe/#
topic write cellsafe/+/+/commands/#
"""
PASSWORDS = {"gw-01": "gw-01-pass", "gw-02": "gw-02-pass", "wms": "wms-pass"}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def secure_broker(tmp_path: Path, pki: Pki) -> Iterator[MosquittoBroker]:
    workdir = tmp_path / "secure-broker"
    workdir.mkdir()
    (workdir / "acl").write_text(ACL)
    listener = SecureListener(
        cafile=pki.ca,
        certfile=pki.server_cert,
        keyfile=pki.server_key,
        password_file=write_password_file(workdir / "passwd", PASSWORDS),
        acl_file=workdir / "acl",
        require_certificate=True,
    )
    with MosquittoBroker(workdir, secure=listener) as broker:
        yield broker


def config(tmp_path: Path, sim_port: int, mqtt: dict[str, Any], gateway_id: str = "gw-01") -> Path:
    data = tomllib.loads((ROOT / "config" / "example.toml").read_text())
    data["gateway"].update({"id": gateway_id, "data_dir": str(tmp_path / "state")})
    data["mqtt"] = mqtt
    for device in data["devices"]:
        device["transport"]["port"] = sim_port
    return write_config(tmp_path, data)


def tls(pki: Pki, port: int, user: str) -> dict[str, Any]:
    return {
        "port": port,
        "username": user,
        "tls": {
            "ca_file": str(pki.ca),
            "cert_file": str(pki.client_cert),
            "key_file": str(pki.client_key),
        },
    }


def an_event(config_file: Path) -> None:
    """A refused command is an event at once: no need to wait for a fire."""
    result = cli("alarm", "--config", str(config_file), "ack", "no.such.alarm", "--by", "test")
    assert result.returncode == 1, result.stderr


def wait_for_socket(config_file: Path) -> None:
    wait_until(
        lambda: cli("alarm", "--config", str(config_file), "list").returncode == 0,
        20,
        "the gateway's control socket",
    )


def test_tls_client_certificate_and_password(
    tmp_path: Path,
    pki: Pki,
    secure_broker: MosquittoBroker,
    lab: Lab,
) -> None:
    sim = lab.sim(quiet_scenario(), 1.0)
    wms = lab.wms(
        secure_broker.port,
        ca=pki.ca,
        login=("wms", PASSWORDS["wms"]),
        cert=(pki.client_cert, pki.client_key),
    )
    path = config(tmp_path, sim.port, tls(pki, secure_broker.port, "gw-01"))
    lab.gateway(path, env={"CELLSAFE_MQTT__PASSWORD": PASSWORDS["gw-01"]})
    wait_for_socket(path)
    an_event(path)
    (event,) = wms.wait_for(1, 20)
    assert event["type"] == "command.refused"
    wait_until(lambda: wms.state.get("status", {}).get("state") == "online", 10, "birth")


def test_wrong_password_is_a_clear_error_and_the_outbox_keeps_filling(
    tmp_path: Path,
    pki: Pki,
    secure_broker: MosquittoBroker,
    lab: Lab,
) -> None:
    sim = lab.sim(quiet_scenario(), 1.0)
    path = config(tmp_path, sim.port, tls(pki, secure_broker.port, "gw-01"))
    gateway = lab.gateway(path, env={"CELLSAFE_MQTT__PASSWORD": "not-the-password"})
    wait_for_socket(path)
    for _ in range(3):
        an_event(path)
    wait_until(lambda: outbox_rows(tmp_path / "state") == (3, 3), 10, "three events stored")
    listing = cli("alarm", "--config", str(path), "list").stdout
    assert "sink mqtt: 3 waiting" in listing
    assert "broker refused the connection: Not authorized - check the MQTT username" in listing
    assert "not-the-password" not in gateway.log.read_text()


def test_acl_refusal_keeps_events_in_the_outbox(
    tmp_path: Path,
    pki: Pki,
    secure_broker: MosquittoBroker,
    lab: Lab,
) -> None:
    sim = lab.sim(quiet_scenario(), 1.0)
    path = config(tmp_path, sim.port, tls(pki, secure_broker.port, "gw-02"), gateway_id="gw-02")
    lab.gateway(path, env={"CELLSAFE_MQTT__PASSWORD": PASSWORDS["gw-02"]})
    wait_for_socket(path)
    an_event(path)
    wait_until(
        lambda: (
            "broker refused queued message 1" in cli("alarm", "--config", str(path), "list").stdout
        ),
        15,
        "the broker's refusal in the status",
    )
    assert outbox_rows(tmp_path / "state") == (1, 1)


def test_broker_list_fails_over_to_the_next_broker(
    tmp_path: Path,
    broker: MosquittoBroker,
    lab: Lab,
) -> None:
    sim = lab.sim(quiet_scenario(), 1.0)
    wms = lab.wms(broker.port)
    dead = free_port()
    path = config(
        tmp_path, sim.port, {"brokers": [f"127.0.0.1:{dead}", f"127.0.0.1:{broker.port}"]}
    )
    lab.gateway(path)
    wait_for_socket(path)
    an_event(path)
    (event,) = wms.wait_for(1, 20)
    assert event["seq"] == 1
    assert f"to 127.0.0.1:{broker.port}" in cli("alarm", "--config", str(path), "list").stdout


def test_reload_applies_a_valid_file_and_refuses_a_broken_one(
    tmp_path: Path,
    broker: MosquittoBroker,
    lab: Lab,
) -> None:
    sim = lab.sim(quiet_scenario(), 1.0)
    wms = lab.wms(broker.port)
    path = config(tmp_path, sim.port, {"port": broker.port, "protocol": "3.1.1"})
    gateway = lab.gateway(path)
    wait_until(lambda: wms.state.get("status", {}).get("state") == "online", 20, "birth")
    first = wms.state["status"]
    assert first["protocol"] == "3.1.1"
    good = path.read_text()

    path.write_text(good.replace("[mqtt]", "[mqtt]\nprot = 1"))
    refused = cli("reload", "--config", str(path), "--by", "tester")
    assert refused.returncode == 1
    assert "mqtt.prot: unknown key" in refused.stderr

    path.write_text(good + "\n[telemetry]\ninterval = 5.0\n")
    accepted = cli("reload", "--config", str(path), "--by", "tester")
    assert accepted.returncode == 0, accepted.stderr
    wait_until(
        lambda: wms.state["status"].get("config_hash") != first["config_hash"],
        20,
        "a birth message with the new configuration",
    )
    assert wms.state["status"]["state"] == "online"
    assert gateway.alive
    wait_for_socket(path)


def test_outbox_near_its_quota_raises_an_alarm_and_keeps_every_event(
    tmp_path: Path,
    lab: Lab,
) -> None:
    sim = lab.sim(quiet_scenario(), 1.0)
    path = config(tmp_path, sim.port, {"port": free_port()})  # no broker: nothing drains
    data = tomllib.loads(path.read_text())
    data["outbox"] = {"max_mb": 0.001, "warn_at": 0.5}  # about 500 bytes before the alarm
    write_config(tmp_path, data)
    lab.gateway(path)
    wait_for_socket(path)
    for _ in range(4):
        an_event(path)
    wait_until(
        lambda: "gateway.outbox.high" in cli("alarm", "--config", str(path), "list").stdout,
        25,
        "the quota alarm",
    )
    waiting, last_seq = outbox_rows(tmp_path / "state")
    assert waiting == last_seq >= 5  # four refusals and the alarm itself: none dropped


def test_a_retained_command_is_not_run_again_after_a_reconnect(
    tmp_path: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    sim = lab.sim(quiet_scenario(), 1.0)
    path = config(tmp_path, sim.port, {"port": broker.port})
    env = {"CELLSAFE_COMMANDS__STATUS_TOKEN": "t0ken", "CELLSAFE_COMMANDS__SHARED_TOKENS": "1"}
    first = lab.gateway(path, env=env)
    wait_for_socket(path)
    client = CommandClient(broker.port, "cellsafe/plant-a/gw-01")
    try:
        # Delivered live, a retained command is a command like any other...
        stale = json.dumps({"id": "old", "token": "t0ken", "args": {}}).encode()
        client.publish("status", stale, retain=True)
        wait_until(lambda: len(client.replies) == 1, 10, "the live reply")
        # ...but the broker hands its copy to every new subscription: never run it again.
        assert first.terminate() == 0
        lab.gateway(path, env=env)
        wait_for_socket(path)
        time.sleep(2)
        assert [r["id"] for r in client.replies] == ["old"]
    finally:
        client.publish("status", b"", retain=True)  # clear the retained message
        client.close()

"""The gateway as systemd runs it: READY, STATUS and WATCHDOG on NOTIFY_SOCKET, SIGHUP, SIGTERM."""

from __future__ import annotations

import json
import signal
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from simulators.net import free_port
from tests.conftest import Lab
from tests.lab import NotifySocket, cli, lab_config, quiet_scenario, wait_until, write_config

pytestmark = pytest.mark.integration

ALARM = "electrolyte-store.temperature.high"


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as page:
            return page.status, page.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _check_http(base: str, verified: int) -> None:
    status, body = _get(f"{base}/health/live")
    assert (status, json.loads(body)) == (200, {"ok": True, "stalled": []})
    status, body = _get(f"{base}/health/ready")
    assert status == 200, body
    assert json.loads(body)["status"].startswith("2/2 devices up, 1 alarms active")
    status, metrics = _get(f"{base}/metrics")
    assert status == 200
    for line in (
        'cellsafe_polls_total{device="zone-sensors"}',
        'cellsafe_poll_errors_total{device="relay-module"} 0.0',
        'cellsafe_poll_duration_seconds{device="zone-sensors"}',
        'cellsafe_alarms{state="unack"} 1.0',
        'cellsafe_relay_on{relay="exhaust-fan-1"} 1.0',
        'cellsafe_relay_verifications_total{outcome="verified",relay="exhaust-fan-1"} '
        f"{verified}.0",
        'cellsafe_sink_backlog{sink="mqtt"}',
        'cellsafe_sink_lag_seconds{sink="mqtt"}',
        "cellsafe_uplink_connected 0.0",
    ):
        assert line in metrics, f"{line} not in\n{metrics}"


def _listing(config: Path) -> str:
    return cli("alarm", "--config", str(config), "list").stdout


def test_ready_status_watchdog_reload_and_stop_under_systemd(
    tmp_path: Path, lab: Lab, notify_socket: NotifySocket
) -> None:
    sim = lab.sim(quiet_scenario(), 1.0)  # the store at 21.5 degC
    config = lab_config(tmp_path, sim.port, free_port(), high=20.0, on_delay=0.0)
    data = tomllib.loads(config.read_text())
    events_file = tmp_path / "events.jsonl"
    data["event_file"] = {"path": str(events_file), "fsync": False}
    http = f"http://127.0.0.1:{free_port()}"
    data["metrics"] = {"listen": http.removeprefix("http://")}
    good = write_config(tmp_path, data)
    gateway = lab.gateway(
        good,
        env={"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "1000000"},
    )

    ready = notify_socket.wait_for("READY", 30)
    assert ready["STATUS"].startswith("2/2 devices up"), ready
    wait_until(lambda: len(notify_socket.with_key("WATCHDOG")) >= 2, 10, "heartbeats")
    wait_until(
        lambda: ALARM in _listing(good) and "relay exhaust-fan-1: on" in _listing(good),
        30,
        "the alarm and the fan on",
    )
    wait_until(lambda: "alarms active" in cli("status", "--config", str(good)).stdout, 10, "status")
    status = cli("status", "--config", str(good)).stdout
    assert "device zone-sensors:" in status and "polls" in status
    _check_http(http, verified=1)

    # A bad file: refused with its error, the running configuration stays.
    text = good.read_text()
    good.write_text(text.replace("[gateway]", "[gateway]\nsiet = 1", 1))
    gateway.send(signal.SIGHUP)
    wait_until(
        lambda: "reload refused" in (tmp_path / "gateway.log").read_text(), 10, "the refusal"
    )
    log = (tmp_path / "gateway.log").read_text()
    assert "gateway.siet" in log
    assert "reload refused" in notify_socket.with_key("STATUS")[-1][1]["STATUS"]
    assert not notify_socket.with_key("RELOADING")
    assert gateway.alive

    # A good file: applied, with the alarm, the relay and the outbox kept.
    good.write_text(text + "\n[telemetry]\ninterval = 5.0\n")
    gateway.send(signal.SIGHUP)
    wait_until(lambda: bool(notify_socket.with_key("RELOADING")), 10, "RELOADING=1")
    wait_until(lambda: len(notify_socket.with_key("READY")) >= 2, 30, "READY after the reload")
    listing = _listing(good)
    assert ALARM in listing and "relay exhaust-fan-1: on" in listing, listing
    beats = len(notify_socket.with_key("WATCHDOG"))
    wait_until(lambda: len(notify_socket.with_key("WATCHDOG")) > beats, 10, "heartbeats go on")
    types = [e["type"] for e in _events(events_file)]
    assert types.count("alarm.raised") == 1, types  # not raised twice
    switched = [e for e in _events(events_file) if e["type"] == "actuator.switched"]
    assert len(switched) == 1, switched  # the fan was neither stopped nor switched again
    _check_http(http, verified=0)  # served again; the fan was not commanded again

    assert gateway.terminate(signal.SIGTERM) == 0
    assert notify_socket.with_key("STOPPING")

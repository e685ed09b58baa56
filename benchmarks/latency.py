"""Latency benchmark: from a sensor change to the alarm at the WMS and to a verified relay.

    .venv/bin/python -m benchmarks.latency [--interval 0.1] [--changes 200]
        [--load-devices 0 --load-points 1000]

The benchmark writes the probe device's value and, in the same request, the millisecond
clock at which it wrote it (``benchmarks.bench_server``). The value crosses a high limit
and back, at a random moment of the poll cycle; the gateway raises and clears the alarm
and its cause-and-effect matrix switches a relay on the same device on and off. Measured,
for each change:

- to the MQTT event: the subscriber's clock when ``alarm.raised``/``alarm.cleared``
  arrives, less the stamp;
- to the verified relay: the time stamped into ``actuator.switched``, which the relay
  emits once the coil reads back in the commanded state, less the stamp.

The change waits for the next poll, so the figures are spread over one poll interval; the
target is p99 <= interval + 20 ms. ``--load-devices`` adds devices polled by the same
gateway at the same time, to see the latency under load. ``--flaky N`` puts a proxy
between the gateway and the probe device that answers every Nth request with exception 4
(device failure), as a noisy RS-485 converter does: the relay's writes and read-backs go
through it too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w
from pymodbus.client import AsyncModbusTcpClient

from benchmarks import harness
from benchmarks.bench_server import PROBE_STAMP, PROBE_UNIT, PROBE_VALUE
from simulators.faults import proxy_in_thread
from simulators.mosquitto import MosquittoBroker

SITE, GATEWAY = "bench", "gw"
HIGH, LIMIT, LOW = 80, 50, 20


@dataclass
class LatencyFigures:
    interval: float
    changes: int
    load_points: int
    to_event_ms: list[float]
    to_relay_ms: list[float]
    flaky: int = 0

    def row(self) -> str:
        event = harness.percentiles(self.to_event_ms)
        relay = harness.percentiles(self.to_relay_ms)
        link = f"1 in {self.flaky} fails" if self.flaky else "clean"
        return (
            f"| {self.interval * 1000:g} | {link} | {self.load_points:,} | {len(self.to_event_ms)} "
            f"| {event[0]:.0f} / {event[1]:.0f} / {event[2]:.0f} "
            f"| {relay[0]:.0f} / {relay[1]:.0f} / {relay[2]:.0f} "
            f"| {self.interval * 1000 + 20:g} |"
        )


HEADER = (
    "| poll interval ms | probe link | other points polled | changes "
    "| to MQTT event p50 / p95 / p99 ms | to verified relay p50 / p95 / p99 ms "
    "| target p99 ms |\n|---:|---|---:|---:|---|---|---:|"
)


def gateway_config(
    workdir: Path,
    server_port: int,
    broker_port: int,
    interval: float,
    load_devices: int,
    load_points: int,
    probe_port: int | None = None,
) -> Path:
    probe = {
        "name": "probe",
        "driver": "modbus",
        "transport": {"type": "tcp", "host": "127.0.0.1", "port": probe_port or server_port},
        "unit_id": PROBE_UNIT,
        "poll_interval": interval,
        "points": [
            {"key": "value", "address": PROBE_VALUE, "type": "uint16"},
            {"key": "stamp", "address": PROBE_STAMP, "type": "uint32"},
            {"key": "fan", "table": "coil", "address": 0, "type": "bool"},
        ],
    }
    load = [
        {
            "name": f"load{unit}",
            "driver": "modbus",
            "transport": {"type": "tcp", "host": "127.0.0.1", "port": server_port},
            "unit_id": unit,
            "poll_interval": 1.0,
            "points": [
                {"key": f"r{i}", "address": i, "type": "uint16"} for i in range(load_points)
            ],
        }
        for unit in range(1, load_devices + 1)
    ]
    data: dict[str, Any] = {
        "gateway": {"site": SITE, "id": GATEWAY, "data_dir": str(workdir / "state")},
        "mqtt": {"port": broker_port},
        "log": {"level": "warning", "format": "json"},
        "devices": [probe, *load],
        "zones": [
            {
                "name": "bench",
                "thresholds": [
                    {"point": "probe.value", "high": LIMIT, "deadband": 1.0, "on_delay": 0.0}
                ],
            }
        ],
        "relays": [
            {"name": "fan", "device": "probe", "point": "fan", "verify_timeout": 1.0},
        ],
        "matrix": [
            {"name": "ventilate", "causes": ["bench.value.high"], "effects": [{"relay": "fan"}]}
        ],
    }
    path = workdir / "gateway.toml"
    path.write_text(tomli_w.dumps(data))
    return path


class Events:
    """Arrival times of alarm events and the verification stamps of relay events."""

    def __init__(self) -> None:
        self.alarms: list[tuple[str, int]] = []
        self.relays: list[tuple[str, int]] = []
        self.changed = threading.Condition()

    def __call__(self, topic: str, payload: bytes) -> None:
        arrived = harness.now_ms32()
        body = json.loads(payload)
        with self.changed:
            process_alarm = body.get("alarm", {}).get("id") == "bench.value.high"
            if body["type"] in ("alarm.raised", "alarm.cleared") and process_alarm:
                self.alarms.append((body["type"], arrived))
            elif body["type"] == "actuator.switched":
                stamped = datetime.fromisoformat(body["ts"].replace("Z", "+00:00")).timestamp()
                self.relays.append((body["actuator"]["state"], int(stamped * 1000) & 0xFFFFFFFF))
            self.changed.notify_all()

    def wait(self, alarms: int, relays: int, timeout: float) -> None:
        with self.changed:
            if not self.changed.wait_for(
                lambda: len(self.alarms) >= alarms and len(self.relays) >= relays, timeout
            ):
                raise TimeoutError(f"waited for {alarms} alarm and {relays} relay events")


async def _change(port: int, value: int) -> int:
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    try:
        stamp = harness.now_ms32()
        words = [value, stamp >> 16, stamp & 0xFFFF]
        reply = await client.write_registers(PROBE_VALUE, words, device_id=PROBE_UNIT)
        if reply.isError():
            raise RuntimeError(f"probe write refused: {reply}")
        return stamp
    finally:
        client.close()


def _stamp_and_write(port: int, value: int) -> int:
    return asyncio.run(_change(port, value))


def measure(
    interval: float,
    changes: int,
    load_devices: int = 0,
    load_points: int = 1000,
    workdir: Path | None = None,
    flaky: int = 0,
) -> LatencyFigures:
    with (
        harness.workspace(workdir) as root,
        harness.device_server(max(load_devices, 1), load_points, root) as server_port,
        MosquittoBroker(root / "broker") as broker,
        proxy_in_thread(server_port, "exception" if flaky else "pass", flaky or 1) as proxy,
    ):
        events = Events()
        topics = [f"cellsafe/{SITE}/{GATEWAY}/events/#"]
        with harness.Subscriber(broker.port, topics, events):
            _stamp_and_write(server_port, LOW)
            config = gateway_config(
                root, server_port, broker.port, interval, load_devices, load_points, proxy.port
            )
            args = [sys.executable, "-m", "gateway", "run", "--config", str(config)]
            with harness.Child(args, root / "gateway.log") as gateway:
                stamps = _run_changes(server_port, events, interval, changes)
                if not gateway.alive():
                    raise RuntimeError(f"gateway died, see {gateway.log}")
    return LatencyFigures(
        interval=interval,
        changes=changes,
        load_points=load_devices * load_points,
        to_event_ms=_ages(stamps, [arrived for _, arrived in events.alarms]),
        to_relay_ms=_ages(stamps, [verified for _, verified in events.relays]),
        flaky=flaky,
    )


def _ages(stamps: list[int], later: list[int]) -> list[float]:
    return [float((t - s) & 0xFFFFFFFF) for s, t in zip(stamps, later, strict=True)]


def _run_changes(port: int, events: Events, interval: float, changes: int) -> list[int]:
    # The first poll after start-up primes the rules; give it a few cycles.
    time.sleep(max(3.0, 5 * interval))
    stamps: list[int] = []
    rng = random.Random(7)
    for n in range(changes):
        time.sleep(rng.uniform(0, interval))  # a random moment of the poll cycle
        stamps.append(_stamp_and_write(port, HIGH if n % 2 == 0 else LOW))
        events.wait(n + 1, n + 1, timeout=10 + 3 * interval)
    return stamps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", type=float, nargs="+", default=[0.1])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--load-devices", type=int, default=0)
    parser.add_argument("--load-points", type=int, default=1000)
    parser.add_argument("--flaky", type=int, nargs="+", default=[0], help="1 in N fails; 0: clean")
    args = parser.parse_args()
    print(harness.machine())
    print(HEADER)
    for interval in args.interval:
        for flaky in args.flaky:
            figures = measure(
                interval, args.changes, args.load_devices, args.load_points, flaky=flaky
            )
            print(figures.row())


if __name__ == "__main__":
    main()

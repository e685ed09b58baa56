"""Polling benchmark: the whole gateway, N devices x M points, measured from outside.

    .venv/bin/python -m benchmarks.polling [--devices 50] [--points 1000] [--interval 1]
        [--seconds 60] [--cases coalesced/uvloop coalesced/asyncio off/uvloop]

``cellsafe run`` polls ``benchmarks.bench_server`` (another process; every register
changes on every read) and publishes every point as telemetry once per poll interval to a
private Mosquitto, where a subscriber counts the good data points that arrive. CPU and
RSS are read from the gateway's ``/proc`` entry, polls and overruns from its status (the
control socket; the Prometheus endpoint shows the same counters, but is left off so that
the gateway is measured as it ships).

Cases: ``coalesced`` is the default block planning (1,000 neighbouring registers take 8
requests); ``off`` reads every point on its own, as the peers do. Each case runs in a
fresh gateway process, on uvloop or on the plain asyncio loop.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from benchmarks import harness
from gateway.cli.client import request_at
from gateway.core.control import SOCKET_NAME
from simulators.mosquitto import MosquittoBroker
from vocab.ids import GATEWAY as OWN_POLLER

SITE, GATEWAY = "bench", "gw"
DEFAULT_CASES = ("coalesced/uvloop", "coalesced/asyncio", "off/uvloop")


@dataclass
class PollingFigures:
    case: str
    devices: int
    points: int
    interval: float
    seconds: float
    startup_s: float
    delivered_per_s: float
    polled_per_s: float
    cpu_s_per_100k: float
    rss_mb: float
    overruns: int
    # (seconds into the window, good points delivered so far, RSS MB), every 10 s
    timeline: list[tuple[float, int, float]] = field(default_factory=list)

    @property
    def points_per_cpu_s(self) -> float:
        return 100_000 / self.cpu_s_per_100k if self.cpu_s_per_100k else 0.0


def gateway_config(
    workdir: Path,
    server_port: int,
    broker_port: int,
    devices: int,
    points: int,
    interval: float,
    optimization: str,
    event_loop: str,
) -> Path:
    data: dict[str, Any] = {
        "gateway": {
            "site": SITE,
            "id": GATEWAY,
            "data_dir": str(workdir / "state"),
            "event_loop": event_loop,
        },
        "mqtt": {"port": broker_port},
        "log": {"level": "warning", "format": "json"},
        "telemetry": {"interval": interval},
        "devices": [
            {
                "name": f"dev{unit}",
                "driver": "modbus",
                "transport": {"type": "tcp", "host": "127.0.0.1", "port": server_port},
                "unit_id": unit,
                "poll_interval": interval,
                "timeout": 5.0,
                "optimization": optimization,
                "points": [{"key": f"r{i}", "address": i, "type": "uint16"} for i in range(points)],
            }
            for unit in range(1, devices + 1)
        ],
    }
    path = workdir / "gateway.toml"
    path.write_text(tomli_w.dumps(data))
    return path


class TelemetryCounter:
    def __init__(self) -> None:
        self.good = 0
        self.messages = 0
        self.online_at: float | None = None
        self._lock = threading.Lock()

    def __call__(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/state/status"):
            if self.online_at is None and json.loads(payload).get("state") == "online":
                self.online_at = time.perf_counter()
            return
        body = json.loads(payload)
        good = sum(1 for p in body["points"].values() if p["quality"] == "good")
        with self._lock:
            self.good += good
            self.messages += 1


def poll_counts(data_dir: Path) -> tuple[int, int]:
    """Polls and overruns over the devices' pollers, from the gateway's status (control
    socket); the gateway's own health poller is not a device."""
    status = request_at(data_dir / SOCKET_NAME, "status", {})["status"]
    pollers = [p for name, p in status["pollers"].items() if name != OWN_POLLER]
    return sum(p["polls"] for p in pollers), sum(p["overruns"] for p in pollers)


def run_case(
    case: str,
    devices: int,
    points: int,
    interval: float,
    seconds: float,
    server_port: int,
    workdir: Path,
    warmup: float = 5.0,
) -> PollingFigures:
    optimization, event_loop = case.split("/")
    plan = "none" if optimization == "coalesced" else "off"
    workdir.mkdir(parents=True)
    counter = TelemetryCounter()
    with MosquittoBroker(workdir / "broker") as broker:
        base = f"cellsafe/{SITE}/{GATEWAY}"
        topics = [f"{base}/telemetry/#", f"{base}/state/status"]
        with harness.Subscriber(broker.port, topics, counter):
            config = gateway_config(
                workdir,
                server_port,
                broker.port,
                devices,
                points,
                interval,
                plan,
                event_loop,
            )
            args = [sys.executable, "-m", "gateway", "run", "--config", str(config)]
            with harness.Child(args, workdir / "gateway.log") as gateway:
                harness.wait_for(lambda: counter.online_at is not None, 120, "birth message")
                assert counter.online_at is not None
                startup = counter.online_at - gateway.started
                harness.wait_for(lambda: counter.messages >= devices, 120, "telemetry")
                time.sleep(warmup)

                def snapshot() -> tuple[float, int, float, int, int]:
                    return (
                        time.perf_counter(),
                        counter.good,
                        harness.cpu_seconds(gateway.pid),
                        *poll_counts(workdir / "state"),
                    )

                t0, good0, cpu0, polls0, over0 = snapshot()
                timeline: list[tuple[float, int, float]] = []
                while (elapsed := time.perf_counter() - t0) < seconds:
                    timeline.append((elapsed, counter.good - good0, harness.rss_mb(gateway.pid)))
                    time.sleep(min(10.0, seconds - elapsed))
                    if not gateway.alive():
                        raise RuntimeError(f"gateway died, see {gateway.log}")
                t1, good1, cpu1, polls1, over1 = snapshot()
                rss = harness.rss_mb(gateway.pid)
                timeline.append((t1 - t0, good1 - good0, rss))
    wall, good, cpu = t1 - t0, good1 - good0, cpu1 - cpu0
    return PollingFigures(
        case=case,
        devices=devices,
        points=points,
        interval=interval,
        seconds=wall,
        startup_s=startup,
        delivered_per_s=good / wall,
        polled_per_s=(polls1 - polls0) * points / wall,
        cpu_s_per_100k=cpu / good * 100_000 if good else float("inf"),
        rss_mb=rss,
        overruns=over1 - over0,
        timeline=timeline,
    )


def measure(
    devices: int,
    points: int,
    interval: float,
    seconds: float,
    cases: tuple[str, ...] = DEFAULT_CASES,
    workdir: Path | None = None,
    warmup: float = 5.0,
) -> list[PollingFigures]:
    with (
        harness.workspace(workdir) as root,
        harness.device_server(devices, points, root) as server_port,
    ):
        return [
            run_case(
                case,
                devices,
                points,
                interval,
                seconds,
                server_port,
                root / case.replace("/", "-"),
                warmup,
            )
            for case in cases
        ]


def table(figures: list[PollingFigures]) -> str:
    lines = [
        "| case | devices x points | interval s | delivered points/s | polled points/s "
        "| CPU s per 100k points | points per CPU s | RSS MB | overruns | start-up s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        lines.append(
            f"| {f.case} | {f.devices} x {f.points} | {f.interval:g} | {f.delivered_per_s:,.0f} "
            f"| {f.polled_per_s:,.0f} | {f.cpu_s_per_100k:.3f} | {f.points_per_cpu_s:,.0f} "
            f"| {f.rss_mb:.1f} | {f.overruns} | {f.startup_s:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES))
    parser.add_argument(
        "--windows", type=float, default=0, help="also print rate and RSS per window of N s"
    )
    args = parser.parse_args()
    figures = measure(args.devices, args.points, args.interval, args.seconds, tuple(args.cases))
    print(harness.machine())
    print(table(figures))
    if args.windows:
        for f in figures:
            print(f"\n{f.case}, per window of {args.windows:g} s:\n")
            print(windows(f, args.windows))


def windows(figures: PollingFigures, length: float) -> str:
    """Delivered rate and RSS per window: steady means flat rates and flat memory."""
    lines = ["| window s | delivered points/s | RSS MB at its end |", "|---|---:|---:|"]
    start_t, start_n = 0.0, 0
    for t, n, rss in figures.timeline:
        if t - start_t >= length - 1 or t == figures.timeline[-1][0]:
            if t > start_t:
                lines.append(
                    f"| {start_t:.0f}-{t:.0f} | {(n - start_n) / (t - start_t):,.0f} | {rss:.1f} |"
                )
            start_t, start_n = t, n
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Broker outage while a gateway polls: how soon, and how completely, the backlog arrives.

    .venv/bin/python -m benchmarks.recovery [--devices 5 --registers 20 --period 0.1]
        [--outage 20]

Every register of ``benchmarks.bench_server`` counts its reads, so the values a
subscriber receives tell exactly which reads arrived, which were lost and which came twice.
The same analysis serves our gateway (here) and the peers (``benchmarks.peers``).

The broker keeps its sessions on disk and restarts on the same port; the subscriber holds a
persistent session, so what was queued for it survives the restart.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from benchmarks import harness, polling
from benchmarks.polling import GATEWAY, SITE
from simulators.mosquitto import MosquittoBroker
from simulators.net import wait_for_port


@dataclass(frozen=True, slots=True)
class Point:
    """One counting-register value as it arrived: the value is that register's read count."""

    unit: int
    register: int
    value: int
    ts_ms: int
    arrived: float


@dataclass(frozen=True, slots=True)
class Recovery:
    """A broker outage while a gateway polls.

    The outage window of a register runs from its last value that arrived with a gateway
    timestamp before the broker stopped to its first value stamped after the broker came
    back; since a register's value is its read count, the values in between are exactly
    the reads the gateway made in that window.
    """

    outage_s: float
    first_after_s: float  # broker back -> first point read after the stop arrives
    backlog_s: float  # broker back -> last point of the outage window arrived
    expected: int  # reads in the outage windows
    arrived: int  # of those, distinct values that arrived
    duplicates: int  # points (whole run) that arrived more than once
    lost_total: int  # reads (whole run, between first and last value seen) that never arrived

    @property
    def fraction(self) -> float:
        return self.arrived / self.expected if self.expected else float("nan")

    def lines(self) -> list[str]:
        return [
            f"broker away {self.outage_s:.1f} s",
            f"first point read during the outage arrived {self.first_after_s:.2f} s"
            " after the broker was back",
            f"outage backlog delivered {self.backlog_s:.2f} s after the broker was back",
            f"outage window: {self.arrived:,} of {self.expected:,} points arrived"
            f" ({self.fraction:.1%}), {self.duplicates:,} duplicates in the run,"
            f" {self.lost_total:,} points lost in the run",
        ]


def analyse(points: list[Point], stopped: float, back: float, outage: float) -> Recovery:
    by_register: dict[tuple[int, int], list[Point]] = {}
    for point in points:
        by_register.setdefault((point.unit, point.register), []).append(point)
    expected = arrived = duplicates = lost = 0
    last_window_arrival = back
    stop_ms, back_ms = stopped * 1000, back * 1000
    # Not just any arrival: the broker also hands over what it had queued for the listener.
    # ... and not a read made in the last moment before the stop, delivered just in time.
    first_after = min(
        (p.arrived for p in points if p.ts_ms >= stop_ms and p.arrived >= back),
        default=float("nan"),
    )
    for series in by_register.values():
        values = [p.value for p in series]
        distinct = set(values)
        duplicates += len(values) - len(distinct)
        lost += max(distinct) - min(distinct) + 1 - len(distinct)
        before = [p.value for p in series if p.ts_ms < stop_ms]
        after = [p.value for p in series if p.ts_ms > back_ms]
        if not before or not after:
            continue
        low, high = max(before), min(after)
        window = {v for v in distinct if low < v < high}
        expected += max(0, high - low - 1)
        arrived += len(window)
        arrivals = [p.arrived for p in series if low < p.value < high]
        last_window_arrival = max([last_window_arrival, *arrivals])
    return Recovery(
        outage_s=outage,
        first_after_s=first_after - back,
        backlog_s=last_window_arrival - back,
        expected=expected,
        arrived=arrived,
        duplicates=duplicates,
        lost_total=lost,
    )


class TelemetryPoints:
    """Our gateway's telemetry as ``Point``s (a paho thread calls it)."""

    def __init__(self) -> None:
        self.points: list[Point] = []
        self.last_arrival = 0.0
        self._lock = threading.Lock()

    def __call__(self, topic: str, payload: bytes) -> None:
        arrived = time.time()
        body = json.loads(payload)
        if not body["device"].startswith("dev"):
            return  # the gateway's own telemetry (device "gateway"), not a benchmark unit
        unit = int(body["device"].removeprefix("dev"))
        batch = [
            Point(unit, int(key[1:]), int(p["value"]), _ms(p["ts"]), arrived)
            for key, p in body["points"].items()
            if p["quality"] == "good"
        ]
        with self._lock:
            self.points += batch
            self.last_arrival = arrived

    def snapshot(self) -> list[Point]:
        with self._lock:
            return list(self.points)


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def measure(
    devices: int = 5,
    registers: int = 20,
    period: float = 0.1,
    outage: float = 20.0,
    *,
    settle: float = 5.0,
    quiet: float = 5.0,
    timeout: float = 120.0,
    workdir: Path | None = None,
) -> Recovery:
    """Our gateway: stop the broker for ``outage`` s while it polls, then restart it."""
    with harness.workspace(workdir) as root:
        received = TelemetryPoints()
        with (
            harness.device_server(devices, registers, root) as server_port,
            MosquittoBroker(root / "broker", persistence=True) as broker,
            harness.Subscriber(
                broker.port, [f"cellsafe/{SITE}/{GATEWAY}/telemetry/#"], received, persistent=True
            ),
        ):
            config = polling.gateway_config(
                root, server_port, broker.port, devices, registers, period, "none", "uvloop"
            )
            args = [sys.executable, "-m", "gateway", "run", "--config", str(config)]
            with harness.Child(args, root / "gateway.log") as gateway:
                harness.wait_for(lambda: bool(received.points), 60, "telemetry")
                time.sleep(settle)
                result = ride_outage(
                    broker, outage, received.snapshot, lambda: received.last_arrival, quiet, timeout
                )
                if not gateway.alive():
                    raise RuntimeError(f"gateway died, see {gateway.log}")
                return result


def ride_outage(
    broker: MosquittoBroker,
    outage: float,
    received: Callable[[], list[Point]],
    last_arrival: Callable[[], float],
    quiet: float,
    timeout: float,
) -> Recovery:
    """Stop the broker for ``outage`` s, restart it on its port, and wait for the backlog.

    Done when live data flows and nothing of the outage window has arrived for ``quiet`` s.
    """
    stopped = time.time()
    broker.stop()
    time.sleep(outage)
    broker.start()  # same port, same persistence file
    back = time.time()
    wait_for_port(broker.host, broker.port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = time.time()
        live = now - last_arrival() < 1.0
        result = analyse(received(), stopped, back, back - stopped)
        if live and result.expected and now - back - result.backlog_s > quiet:
            break
    return analyse(received(), stopped, back, back - stopped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=5)
    parser.add_argument("--registers", type=int, default=20)
    parser.add_argument("--period", type=float, default=0.1)
    parser.add_argument("--outage", type=float, default=20.0)
    args = parser.parse_args()
    result = measure(args.devices, args.registers, args.period, args.outage)
    print("\n".join(result.lines()))


if __name__ == "__main__":
    main()

"""Soak: alarms cycling while the gateway and the broker are killed (SIGKILL) at random.

    .venv/bin/python -m benchmarks.soak [--minutes 5] [--delivery wms broker]
        [--faults-every 15] [--cycle 2]

A probe value crosses a high limit and back every ``--cycle`` seconds, so the gateway
raises and clears an alarm, trips and clears a matrix row and switches a relay (six events
a cycle). Every ``--faults-every`` seconds (at random, 0.5x to 1.5x), the gateway and the
broker in turn are killed with SIGKILL and restarted 0.5 to 2 s later. The WMS side is
``cellsafe wms-listen``'s reference consumer (``gateway/cli/wms_listen.py``), which stores
every event by ``seq``, confirms and asks for gaps (with ``delivery = "wms"``; with
``broker`` its confirmations are refused and change nothing).

Reported per delivery mode: faults injected, events numbered, events lost (numbered but
never at the consumer; must be 0 with ``wms``), duplicates (deliveries of a ``seq`` the
consumer already had), the gateway's CPU seconds (all its processes, from ``/proc``) and
the largest size its event log reached on disk: the cost of confirmation is the
difference between the two modes in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from benchmarks import harness, latency
from benchmarks.latency import HIGH, LOW
from gateway.cli.wms_listen import ReferenceConsumer
from simulators.mosquitto import MosquittoBroker

KEY = "soak-delivery-key-0123456789abcdef0123"


@dataclass
class SoakFigures:
    delivery: str
    minutes: float
    gateway_kills: int
    broker_kills: int
    events: int
    lost: int
    duplicates: int
    cpu_s: float
    log_peak_kb: float

    def row(self) -> str:
        return (
            f"| {self.delivery} | {self.minutes:g} | {self.gateway_kills} | {self.broker_kills} "
            f"| {self.events} | {self.lost} | {self.duplicates} | {self.cpu_s:.1f} "
            f"| {self.log_peak_kb:,.0f} |"
        )


HEADER = (
    "| delivery | minutes | gateway SIGKILLs | broker SIGKILLs | events | lost | duplicates "
    "| gateway CPU s | log peak KB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


class Gateway:
    """The gateway as a child process that can be killed and started again."""

    def __init__(self, config: Path, log: Path) -> None:
        self._args = [sys.executable, "-m", "gateway", "run", "--config", str(config)]
        self._log = log
        self._child: harness.Child | None = None
        self.cpu_s = 0.0

    def start(self) -> None:
        env = {"CELLSAFE_COMMANDS__KEYS__WMS": KEY}
        self._child = harness.Child(self._args, self._log, env=env)

    def kill(self) -> None:
        if self._child is not None:
            self._add_cpu(self._child)
            self._child.process.kill()
            self._child.process.wait()
            self._child = None

    def stop(self) -> None:
        if self._child is not None:
            self._add_cpu(self._child)
            self._child.stop()
            self._child = None

    def _add_cpu(self, child: harness.Child) -> None:
        with contextlib.suppress(OSError):
            self.cpu_s += harness.cpu_seconds(child.pid)


def _last_seq(state: Path) -> int:
    path = state / "outbox.sqlite3"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        (last,) = db.execute("SELECT value FROM counters WHERE name = 'last_seq'").fetchone()
    return int(last)


def _log_kb(state: Path) -> float:
    return sum(p.stat().st_size for p in state.glob("outbox.sqlite3*")) / 1024


def measure(
    delivery: str,
    minutes: float,
    faults_every: float = 15.0,
    cycle: float = 2.0,
    workdir: Path | None = None,
    seed: int = 7,
) -> SoakFigures:
    rng = random.Random(seed)
    with (
        harness.workspace(workdir) as root,
        harness.device_server(1, 10, root) as server_port,
        MosquittoBroker(root / "broker", persistence=True) as broker,
    ):
        config = latency.gateway_config(root, server_port, broker.port, 0.2, 0, 0)
        data = tomllib.loads(config.read_text())
        data["mqtt"]["delivery"] = delivery
        data["commands"] = {"principals": {"wms": {"classes": ["delivery"]}}}
        config.write_text(tomli_w.dumps(data))
        state = root / "state"
        base = f"cellsafe/{latency.SITE}/{latency.GATEWAY}"
        consumer = ReferenceConsumer(
            "127.0.0.1", broker.port, base, root / "wms.sqlite3", ("wms", KEY.encode())
        ).start()
        gateway = Gateway(config, root / "gateway.log")
        gateway.start()
        kills = {"gateway": 0, "broker": 0}
        peak = 0.0
        try:
            time.sleep(3)
            ends = time.monotonic() + minutes * 60
            next_fault = time.monotonic() + faults_every * rng.uniform(0.5, 1.5)
            value = HIGH
            while time.monotonic() < ends:
                asyncio.run(latency._change(server_port, value))
                value = LOW if value == HIGH else HIGH
                time.sleep(cycle / 2)
                if state.exists():
                    peak = max(peak, _log_kb(state))
                if time.monotonic() >= next_fault:
                    victim = "broker" if kills["gateway"] > kills["broker"] else "gateway"
                    kills[victim] += 1
                    if victim == "gateway":
                        gateway.kill()
                        time.sleep(rng.uniform(0.5, 2.0))
                        gateway.start()
                    else:
                        broker.crash()
                        time.sleep(rng.uniform(0.5, 2.0))
                        broker.start()
                    next_fault = time.monotonic() + faults_every * rng.uniform(0.5, 1.5)
            asyncio.run(latency._change(server_port, LOW))
            time.sleep(3)  # the last transitions
            events = _last_seq(state)
            with contextlib.suppress(TimeoutError):  # what never comes is counted as lost
                harness.wait_for(lambda: consumer.watermark >= events, 60, "the consumer")
            seen = consumer.seqs()
        finally:
            gateway.stop()
            consumer.stop()
    return SoakFigures(
        delivery=delivery,
        minutes=minutes,
        gateway_kills=kills["gateway"],
        broker_kills=kills["broker"],
        events=events,
        lost=len(set(range(1, events + 1)) - set(seen)),
        duplicates=consumer.received - len(seen),
        cpu_s=gateway.cpu_s,
        log_peak_kb=peak,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--delivery", nargs="+", default=["wms", "broker"])
    parser.add_argument("--faults-every", type=float, default=15.0, help="seconds, on average")
    parser.add_argument("--cycle", type=float, default=2.0, help="seconds per alarm cycle")
    args = parser.parse_args()
    print(harness.machine())
    print(HEADER)
    for delivery in args.delivery:
        print(measure(delivery, args.minutes, args.faults_every, args.cycle).row(), flush=True)


if __name__ == "__main__":
    main()

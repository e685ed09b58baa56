"""OPC UA subscription benchmark: monitored items and value changes per second through the
``opcua`` driver, the change -> gateway alarm latency, and CPU per 100k changes.

    .venv/bin/python -m benchmarks.opcua [--items 10000] [--alarm-items 200] [--seconds 30]
        [--publishing-interval 0.05] [--log-level info|off]

A server process (``--serve``: the fire-panel simulator with ``--items`` extra Double
variables) changes every variable once a second, stamping each value's SourceTimestamp.
The server writes them in chunks of ``CHUNK`` and lets its publish loop run in between, as
a device's changes spread over its scan. This process runs the driver (data-change
subscriptions, publishing interval ``--publishing-interval``, 50 ms by default, queue size 10)
with a publisher that counts every good change and runs the first ``--alarm-items`` points
through the gateway's own rules (a zone input per point: 100 raises its alarm, 0 clears
it). Latency is wall clock: the server's SourceTimestamp to the sample's arrival, and to
the alarm event the rules make of it (both processes share the machine's clock). CPU is
read from ``/proc`` for both processes over the measuring window, after a warm-up. A
change counts as made and as delivered when its SourceTimestamp lies in a burst (one
second's change of every item) that the server began in the window, from the server's log
of each burst's start and duration. ``--log-level`` runs the driver under the gateway's own
logging, as ``cellsafe run`` does (default ``info``, its shipped level).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import uvloop
from asyncua import ua

from benchmarks import harness
from drivers.opcua import OpcuaDriver
from drivers.opcua_config import OpcuaConfig
from rules.alarms import AlarmManager
from rules.discrete import DiscreteSpec
from rules.engine import RuleEngine
from simulators.fire_panel import FirePanelServer
from simulators.net import free_port, wait_for_port
from vocab.samples import Sample
from vocab.scans import Scan

WARMUP = 5.0  # seconds after the subscriptions stand, not measured
CHUNK = 250  # variables the server writes between two chances to publish
SLACK = 5.0  # seconds either side of the window whose stamps are kept, to sort out after
STAMP_SLACK = 0.0015  # seconds: the burst log's rounding (1 ms) and peers' whole ms


@dataclass
class OpcuaFigures:
    items: int
    alarm_items: int
    publishing_interval: float
    seconds: float
    subscribe_s: float
    changes_made: int
    changes_delivered: int
    delivered_per_s: float
    arrival_ms_p50_p95_p99: list[float]
    arrival_ms_max: float
    alarm_events: int
    alarm_arrival_ms_p50_p95_p99: list[float]  # the same changes' arrival at the publisher
    alarm_ms_p50_p95_p99: list[float]
    cpu_s_per_100k: float
    server_cpu_s_per_100k: float
    rss_mb: float


class Counter:
    """The benchmark's publisher: counts changes, times arrivals and alarms."""

    def __init__(self, device: str, alarm_items: int) -> None:
        inputs = [
            DiscreteSpec(zone="bench", point=f"{device}.p{n}", name=f"p{n}", fault_delay=60)
            for n in range(alarm_items)
        ]
        self.engine = RuleEngine([], inputs)
        self.alarms = AlarmManager(self.engine.definitions)
        # Changes stamped (SourceTimestamp, Unix seconds) in [lo, hi) are kept; those within
        # a burst the server began in the measuring window are counted (``in_bursts``).
        self.window = (float("inf"), float("inf"))
        # (SourceTimestamp, arrival less it) of every good change stamped in the window.
        self.stamped: list[tuple[float, float]] = []
        self.alarm_latency: list[tuple[float, float]] = []  # (SourceTimestamp, latency)
        # (SourceTimestamp, arrival less it) of the same changes: the rules' share is the rest.
        self.alarm_arrival: list[tuple[float, float]] = []
        self._source: dict[str, float] = {}

    def samples(self, samples: Sequence[Sample], /) -> None:
        now = time.time()
        lo, hi = self.window
        for s in samples:
            if s.is_good and s.source_ts is not None and lo <= s.source_ts < hi:
                self.stamped.append((s.source_ts, now - s.source_ts))
                self._source[s.point] = s.source_ts
            else:
                self._source.pop(s.point, None)
        outcome = self.alarms.on_conditions(self.engine.evaluate(samples))
        done = time.time()
        for event in outcome.events:
            if event.type in ("alarm.raised", "alarm.cleared"):
                source = self._source.get(event.body["alarm"]["point"])
                if source is not None:
                    self.alarm_latency.append((source, done - source))
                    self.alarm_arrival.append((source, now - source))

    def scans(self, scans: Sequence[Scan], /) -> None:
        pass


async def measure(
    port: int,
    items: int,
    alarm_items: int,
    seconds: float,
    server: harness.Child,
    publishing: float,
    warmup: float = WARMUP,
) -> OpcuaFigures:
    server_pid = server.pid

    cfg = OpcuaConfig.model_validate(
        {
            "name": "bench",
            "driver": "opcua",
            "endpoint": f"opc.tcp://127.0.0.1:{port}",
            "timeout": 30,
            "publishing_interval": publishing,
            "sampling_interval": 0,
            "queue_size": 10,  # the default: a server that publishes late keeps both changes
            "keepalive": 5,
            # Restated values carry their old SourceTimestamp: they would count twice here.
            "restate_interval": 3600,
            "max_nodes_per_read": 2000,
            "points": [{"key": f"p{n}", "node_id": f"ns=2;s=Bench.{n}"} for n in range(items)],
        }
    )
    counter = Counter("bench", alarm_items)
    driver = OpcuaDriver(cfg)
    started = time.perf_counter()
    await driver.start(counter)
    subscribe_s = time.perf_counter() - started
    if driver.last_error:
        raise RuntimeError(driver.last_error)
    try:
        await asyncio.sleep(warmup)
        me = os.getpid()
        # Whole seconds: the server changes every item once, just after each second begins.
        start = math.ceil(time.time()) + 0.0
        ticks = max(1, int(seconds))
        # Stamps a little either side: a burst begun before the window may end inside it.
        counter.window = (start - SLACK, start + ticks + SLACK)
        await asyncio.sleep(start - time.time())
        cpu0, server0 = harness.cpu_seconds(me), harness.cpu_seconds(server_pid)
        await asyncio.sleep(ticks)
        cpu = harness.cpu_seconds(me) - cpu0
        server_cpu = harness.cpu_seconds(server_pid) - server0
        elapsed = float(ticks)
        await asyncio.sleep(min(3.0, 1.0 + warmup / 2))  # the last second's stragglers count
        rss = harness.rss_mb(me)
    finally:
        await driver.close()
    # A second whose burst overran the next one skips a tick: count what the server made.
    bursts = server_bursts(server.log, start, start + ticks)
    made = items * len(bursts)
    arrivals = [late for stamp, late in counter.stamped if in_bursts(stamp, bursts)]
    delivered = len(arrivals)
    to_alarm = [late for stamp, late in counter.alarm_latency if in_bursts(stamp, bursts)]
    alarm_arrival = [late for stamp, late in counter.alarm_arrival if in_bursts(stamp, bursts)]
    per100k = 100_000 / max(delivered, 1)
    return OpcuaFigures(
        items=items,
        alarm_items=alarm_items,
        publishing_interval=publishing,
        seconds=round(elapsed, 1),
        subscribe_s=round(subscribe_s, 2),
        changes_made=made,
        changes_delivered=delivered,
        delivered_per_s=round(delivered / elapsed, 1),
        arrival_ms_p50_p95_p99=[round(1000 * v, 1) for v in harness.percentiles(arrivals)],
        arrival_ms_max=round(1000 * max(arrivals, default=0.0), 1),
        alarm_events=len(to_alarm),
        alarm_arrival_ms_p50_p95_p99=[
            round(1000 * v, 1) for v in harness.percentiles(alarm_arrival)
        ],
        alarm_ms_p50_p95_p99=[round(1000 * v, 1) for v in harness.percentiles(to_alarm)],
        cpu_s_per_100k=round(cpu * per100k, 2),
        server_cpu_s_per_100k=round(server_cpu * per100k, 2),
        rss_mb=round(rss, 1),
    )


def server_bursts(log: Path, lo: float, hi: float) -> list[tuple[float, float]]:
    """(began, ended), Unix seconds, of every complete change of all items that the server
    (``serve``) began in [lo, hi): every SourceTimestamp it wrote lies within one of them."""
    bursts = []
    for line in log.read_text().splitlines():
        if line.startswith("tick "):
            began, took = (float(v) for v in line.split()[1:3])
            if lo <= began < hi:
                bursts.append((began, began + took))
    return sorted(bursts)


def in_bursts(stamp: float, bursts: Sequence[tuple[float, float]]) -> bool:
    """``stamp`` (Unix seconds) within one of ``bursts``, give or take ``STAMP_SLACK`` (the
    log's rounding of the duration, and a peer's stamps in whole milliseconds)."""
    n = bisect.bisect_right(bursts, (stamp + STAMP_SLACK, math.inf)) - 1
    return n >= 0 and stamp <= bursts[n][1] + STAMP_SLACK


async def serve(port: int, items: int) -> None:
    """The server process: every extra variable changes once a second, on the second."""
    panel = FirePanelServer({}, port=port, extra_points=items)
    await panel.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    tick = 0
    server = panel.server
    nodes = [n.nodeid for n in panel.extra]
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0 - time.time() % 1.0)
        if stop.is_set():
            break
        tick += 1
        began = time.time()
        value = ua.Variant(100.0 if tick % 2 else 0.0, ua.VariantType.Double)
        for n, nodeid in enumerate(nodes):
            data = ua.DataValue(value, SourceTimestamp=_utcnow(), ServerTimestamp=_utcnow())
            await server.write_attribute_value(nodeid, data)
            if n % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)  # let the server publish between chunks, as a PLC would
        # One line per complete change of every item: the client counts what was made.
        print(f"tick {began:.6f} {time.time() - began:.6f}", flush=True)
    await panel.stop()


def _utcnow() -> ua.DateTime:
    import datetime

    return datetime.datetime.now(datetime.UTC)  # type: ignore[return-value]


def run(
    items: int,
    alarm_items: int,
    seconds: float,
    workdir: Path,
    publishing: float = 0.05,
    warmup: float = WARMUP,
) -> OpcuaFigures:
    port = free_port()
    args = [sys.executable, "-m", "benchmarks.opcua", "--serve", "--port", str(port)]
    args += ["--items", str(items)]
    with harness.Child(args, workdir / "opcua-server.log") as server:
        wait_for_port("127.0.0.1", port, timeout=120)
        if not server.alive():
            raise RuntimeError(f"OPC UA bench server died, see {server.log}")
        # The gateway's own loop (``[gateway] event_loop = "uvloop"`` by default).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(
                measure(port, items, alarm_items, seconds, server, publishing, warmup)
            )


def ms(values: Sequence[float]) -> str:
    """A table cell of percentiles in ms: ``"p50 / p95 / p99"``."""
    return " / ".join(f"{v:g}" for v in values)


def table(rows: Sequence[OpcuaFigures]) -> str:
    """Markdown rows of the figures, as in REPORT.md."""
    lines = [
        "| items | publishing | made | delivered | changes/s | arrival p50 / p95 / p99 ms "
        "| alarm points' arrival p50 / p95 / p99 ms | change -> alarm p50 / p95 / p99 ms "
        "| driver CPU s per 100k | server CPU s per 100k | RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in rows:
        lines.append(
            f"| {f.items:,} | {1000 * f.publishing_interval:g} ms | {f.changes_made:,} "
            f"| {f.changes_delivered:,} | {f.delivered_per_s:,.0f} "
            f"| {ms(f.arrival_ms_p50_p95_p99)} | {ms(f.alarm_arrival_ms_p50_p95_p99)} "
            f"| {ms(f.alarm_ms_p50_p95_p99)} "
            f"| {f.cpu_s_per_100k:g} | {f.server_cpu_s_per_100k:g} | {f.rss_mb:g} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--alarm-items", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--publishing-interval", type=float, default=0.05, help="seconds (default 0.05)"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        help="the gateway's logging (gateway.cli.logs, JSON) at this level, to opcua-gateway.log"
        " in the work directory, as `cellsafe run` at its default level; 'off' for none",
    )
    parser.add_argument("--workdir", type=Path, help="keep logs here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.port, args.items))
        return 0
    with harness.workspace(args.workdir) as workdir, contextlib.ExitStack() as logs:
        if args.log_level != "off":
            from gateway.cli import logs as gateway_logs

            stream = logs.enter_context((workdir / "opcua-gateway.log").open("w"))
            gateway_logs.configure(args.log_level, "json", stream=stream)
        figures = run(args.items, args.alarm_items, args.seconds, workdir, args.publishing_interval)
    print(json.dumps(asdict(figures), indent=2))
    print(table([figures]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

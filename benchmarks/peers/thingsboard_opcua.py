"""ThingsBoard IoT Gateway's OPC UA connector beside our ``opcua`` driver, on one server.

    python -m benchmarks.peers.thingsboard_opcua --items 100 1000 10000 --seconds 20

For each item count, one server process (``benchmarks.opcua --serve``: the fire-panel
simulator with that many Double variables, each changed once a second, on the second,
stamped with its SourceTimestamp) serves both gateways in turn: first our driver
(``benchmarks.opcua.measure``, with 200 of the points through the alarm rules), then
ThingsBoard, through its OPC UA connector, publishing to a private Mosquitto, counted by a
subscriber. Only one gateway runs at a time: the machine has two cores. Ours goes first
because ThingsBoard, when stopped, does not close its session: the server would go on
serving its subscription until the session times out.

What it relies on, found in ``thingsboard-gateway`` 3.8.5 (``connectors/opcua/``), beyond
what ``benchmarks.peers.thingsboard`` lists for the gateway itself:

- Its connector pins asyncua 1.1.5 and at import force-reinstalls any other version
  (ours is 2.x): ``ensure_installed`` puts 1.1.5 in TB's own venv.
- Configuration (``opcua.json``, the current format with ``deviceInfo``): the device node by
  NodeId (``ns=2;s=Bench``), one ``timeseries`` entry per variable as
  ``${ns=2;s=Bench.N}``, ``enableSubscriptions`` on. ``subCheckPeriodInMillis`` is both
  the subscription's publishing interval and the converter thread's idle sleep; the
  connector raises anything under 100 ms to 100 ms. Each monitored item is created with
  asyncua 1.1.5's defaults (sampling interval 0, queue size 0, i.e. 1).
- ``timestampLocation = "SourceTimestamp"`` makes each value's ``ts`` the server's
  SourceTimestamp in milliseconds: the subscriber counts a value once, by its stamp, in
  the window of whole seconds, and its latency is arrival less that stamp. Ours counts the
  same way at the publisher, stamp for stamp (``benchmarks.opcua.Counter``).
- At connect TB reads every node's BrowseName, one request per node, and subscribes in
  batches of the server's MaxNodesPerSubscribe (100 when the server does not say).
- Notifications go through a ``queue.Queue`` to a converter thread, which forms batches of
  up to ``subDataMaxBatchSize`` (1,000) within ``subDataMinBatchCreationTimeMs`` (200),
  converts them, and hands them to TB's storage and MQTT sender.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from benchmarks import harness
from benchmarks import opcua as ours
from benchmarks.peers.thingsboard import (
    TB_VERSION,
    ThingsBoardGateway,
    _Listener,
    ensure_installed,
    gateway_config,
    logs_config,
)
from simulators.mosquitto import MosquittoBroker
from simulators.net import free_port, wait_for_port

DEVICE = "bench"
MIN_PUBLISHING_MS = 100  # TB raises a smaller subCheckPeriodInMillis to this


def connector_config(port: int, items: int, publishing_ms: int) -> dict[str, Any]:
    """``opcua.json``: one device, the ``Bench`` object, a timeseries key per variable."""
    timeseries = [
        {
            "key": f"p{n}",
            "type": "identifier",
            "value": f"${{ns=2;s=Bench.{n}}}",
            "timestampLocation": "SourceTimestamp",
        }
        for n in range(items)
    ]
    return {
        "name": "OPC-UA",
        "logLevel": "INFO",
        "server": {
            "url": f"opc.tcp://127.0.0.1:{port}",
            "timeoutInMillis": 30_000,
            "scanPeriodInMillis": 3_600_000,
            "pollPeriodInMillis": 5_000,
            "enableSubscriptions": True,
            "subCheckPeriodInMillis": publishing_ms,
            "subDataMaxBatchSize": 1000,
            "subDataMinBatchCreationTimeMs": 200,
            "subscriptionProcessBatchSize": 2000,
            "sessionTimeoutInMillis": 120_000,
            "showMap": False,
            "security": "Basic256Sha256",  # read only for certificate identities
            "identity": {"type": "anonymous"},
        },
        "mapping": [
            {
                "deviceNodeSource": "identifier",
                "deviceNodePattern": "ns=2;s=Bench",
                "deviceInfo": {
                    "deviceNameExpression": DEVICE,
                    "deviceNameExpressionSource": "constant",
                    "deviceProfileExpression": "default",
                    "deviceProfileExpressionSource": "constant",
                },
                "attributes": [],
                "timeseries": timeseries,
                "rpc_methods": [],
                "attributes_updates": [],
            }
        ],
    }


class _OpcuaListener(_Listener):
    """Counts the values of ``DEVICE`` whose stamp (SourceTimestamp, ms) is in the window."""

    def __init__(self, broker_port: int) -> None:
        self.window = (math.inf, math.inf)  # Unix seconds, [lo, hi)
        self.values = 0  # every value of DEVICE received, in the window or not
        # (stamp, arrival less stamp), seconds, of every value stamped in the window.
        self.stamped: list[tuple[float, float]] = []
        self.keys: set[str] = set()  # every key seen: all subscribed once all are here
        super().__init__(broker_port, devices=0, registers=0, track=False)

    def _telemetry(self, payload: dict[str, list[dict[str, Any]]], arrived: float) -> None:
        lo, hi = self.window
        with self._lock:
            self.messages += 1
            self.last_arrival = arrived
            for entry in payload.get(DEVICE, []):
                values = entry.get("values", entry)
                self.values += len(values)
                self.keys.update(values)
                stamp = float(entry.get("ts", 0)) / 1000
                if lo <= stamp < hi:
                    self.stamped.extend([(stamp, arrived - stamp)] * len(values))
            self.points = self.values


class ThingsBoardOpcua(ThingsBoardGateway):
    """TB subscribed to ``items`` variables ``ns=2;s=Bench.N`` of an OPC UA server."""

    def __init__(
        self,
        workdir: Path,
        broker_port: int,
        opcua_port: int,
        items: int,
        publishing_ms: int,
        *,
        python: Path | None = None,
    ) -> None:
        super().__init__(workdir, broker_port, 0, 0, 0, 1.0, probe=False, python=python)
        self.opcua_port = opcua_port
        self.items = items
        self.publishing_ms = publishing_ms

    def config_files(self) -> dict[str, dict[str, Any]]:
        gateway = gateway_config(self.broker_port)
        gateway["connectors"] = [{"type": "opcua", "name": "OPC-UA", "configuration": "opcua.json"}]
        return {
            "tb_gateway.json": gateway,
            "opcua.json": connector_config(self.opcua_port, self.items, self.publishing_ms),
            "logs.json": logs_config(self.log_dir),
        }

    def make_listener(self) -> _OpcuaListener:
        return _OpcuaListener(self.broker_port)

    @property
    def listener(self) -> _OpcuaListener:
        listener = self._listener
        if not isinstance(listener, _OpcuaListener):
            raise RuntimeError("ThingsBoard gateway is not running")
        return listener


@dataclass(frozen=True, slots=True)
class PeerFigures:
    """ThingsBoard's side of one run; the window counts whole seconds of server changes."""

    items: int
    publishing_ms: int
    seconds: int
    ready_s: float  # start to a value of every item at the subscriber
    changes_made: int
    delivered: int
    delivered_per_s: float
    arrival_ms_p50_p95_p99: list[float]
    cpu_s_per_100k: float
    cpu_percent: float
    rss_mb: float
    server_cpu_s_per_100k: float


@dataclass(frozen=True, slots=True)
class SideBySide:
    theirs: PeerFigures | None
    theirs_error: str | None
    ours: ours.OpcuaFigures


def measure_peer(
    server: harness.Child,
    opcua_port: int,
    items: int,
    seconds: int,
    workdir: Path,
    publishing_ms: int = MIN_PUBLISHING_MS,
    *,
    ready_timeout: float = 180.0,
    warmup: float = ours.WARMUP,
    drain: float = 10.0,
) -> PeerFigures:
    """TB against a running ``benchmarks.opcua --serve`` process; see the module docstring.

    After the window, waits up to ``drain`` s for late values of it (TB queues what it
    cannot send at once), so that a slow delivery counts as slow, not as lost.
    """
    python = ensure_installed()
    with MosquittoBroker(workdir / "broker") as broker:
        tb = ThingsBoardOpcua(
            workdir / "tb", broker.port, opcua_port, items, publishing_ms, python=python
        )
        with tb:
            started = time.perf_counter()
            tb.wait_ready(ready_timeout)
            listener = tb.listener
            # Every item's first value (the subscription's initial one, or a change) seen.
            deadline = time.monotonic() + ready_timeout
            while len(listener.keys) < items and time.monotonic() < deadline and tb.alive():
                time.sleep(0.1)
            ready = time.perf_counter() - started
            if len(listener.keys) < items:
                raise TimeoutError(
                    f"ThingsBoard delivered {len(listener.keys)} of {items} items in "
                    f"{ready_timeout:g} s, see {tb.log_dir}"
                )
            time.sleep(warmup)
            start = float(math.ceil(time.time()))
            listener.window = (start - ours.SLACK, start + seconds + ours.SLACK)
            time.sleep(max(0.0, start - time.time()))
            cpu0, server0 = harness.cpu_seconds(tb.pid), harness.cpu_seconds(server.pid)
            time.sleep(seconds)
            cpu = harness.cpu_seconds(tb.pid) - cpu0
            server_cpu = harness.cpu_seconds(server.pid) - server0
            rss = harness.rss_mb(tb.pid)
            bursts = ours.server_bursts(server.log, start, start + seconds)
            made = items * len(bursts)

            def arrivals() -> list[float]:
                with listener._lock:
                    stamped = list(listener.stamped)
                return [late for stamp, late in stamped if ours.in_bursts(stamp, bursts)]

            deadline = time.monotonic() + drain
            while len(arrivals()) < made and time.monotonic() < deadline and tb.alive():
                time.sleep(0.5)
            late = arrivals()
            delivered = len(late)
    per100k = 100_000 / max(delivered, 1)
    return PeerFigures(
        items=items,
        publishing_ms=max(publishing_ms, MIN_PUBLISHING_MS),
        seconds=seconds,
        ready_s=round(ready, 1),
        changes_made=made,
        delivered=delivered,
        delivered_per_s=round(delivered / seconds, 1),
        arrival_ms_p50_p95_p99=[round(1000 * v, 1) for v in harness.percentiles(late)],
        cpu_s_per_100k=round(cpu * per100k, 2),
        cpu_percent=round(100 * cpu / seconds, 1),
        rss_mb=round(rss, 1),
        server_cpu_s_per_100k=round(server_cpu * per100k, 2),
    )


def side_by_side(
    items: int,
    seconds: int,
    workdir: Path,
    publishing_ms: int = MIN_PUBLISHING_MS,
    alarm_items: int = 200,
) -> SideBySide:
    """One server process for ``items`` variables; TB on it, then our driver on it."""
    port = free_port()
    args = [sys.executable, "-m", "benchmarks.opcua", "--serve", "--port", str(port)]
    args += ["--items", str(items)]
    workdir.mkdir(parents=True, exist_ok=True)
    with harness.Child(args, workdir / "opcua-server.log") as server:
        wait_for_port("127.0.0.1", port, timeout=120)
        # Ours first: our driver closes its session, so the server drops its subscription.
        # ThingsBoard, stopped, leaves its session to time out (sessionTimeoutInMillis):
        # the server would go on notifying it while the next gateway is measured.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            mine = runner.run(
                ours.measure(
                    port,
                    items,
                    min(alarm_items, items),
                    seconds,
                    server,
                    publishing_ms / 1000,
                )
            )
        theirs: PeerFigures | None = None
        error: str | None = None
        try:
            theirs = measure_peer(server, port, items, seconds, workdir / "tb", publishing_ms)
        except (RuntimeError, TimeoutError) as err:
            error = str(err)
    return SideBySide(theirs, error, mine)


def table(rows: Sequence[SideBySide]) -> str:
    """Markdown rows, ours and ThingsBoard's for each item count, as in REPORT.md."""
    lines = [
        "| items | gateway | made | delivered | values/s | arrival p50 / p95 / p99 ms "
        "| change -> alarm p50 / p95 / p99 ms | CPU s per 100k | CPU % of a core | RSS MB "
        "| server CPU s per 100k |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    for row in rows:
        f = row.ours
        lines.append(
            f"| {f.items:,} | CellSafe | {f.changes_made:,} | {f.changes_delivered:,} "
            f"| {f.delivered_per_s:,.0f} | {ours.ms(f.arrival_ms_p50_p95_p99)} "
            f"| {ours.ms(f.alarm_ms_p50_p95_p99)} "
            f"| {f.cpu_s_per_100k:g} | {f.cpu_s_per_100k * f.delivered_per_s / 1000:.1f} "
            f"| {f.rss_mb:g} | {f.server_cpu_s_per_100k:g} |"
        )
        t = row.theirs
        if t is None:
            lines.append(f"| {f.items:,} | ThingsBoard | not measured: {row.theirs_error} |")
        else:
            lines.append(
                f"| {t.items:,} | ThingsBoard | {t.changes_made:,} | {t.delivered:,} "
                f"| {t.delivered_per_s:,.0f} | {ours.ms(t.arrival_ms_p50_p95_p99)} | no rules "
                f"| {t.cpu_s_per_100k:g} | {t.cpu_percent:g} | {t.rss_mb:g} "
                f"| {t.server_cpu_s_per_100k:g} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--seconds", type=int, default=20, help="measured window, s")
    parser.add_argument(
        "--publishing-interval",
        type=int,
        default=MIN_PUBLISHING_MS,
        help=f"ms, for both gateways (TB's least: {MIN_PUBLISHING_MS})",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        help="our side's logging, as in benchmarks.opcua (default info, as shipped; 'off')",
    )
    parser.add_argument("--workdir", type=Path, help="keep configs and logs here")
    args = parser.parse_args(argv)
    rows = []
    with harness.workspace(args.workdir) as work, contextlib.ExitStack() as logs:
        if args.log_level != "off":
            from gateway.cli import logs as gateway_logs

            stream = logs.enter_context((work / "opcua-gateway.log").open("w"))
            gateway_logs.configure(args.log_level, "json", stream=stream)
        for items in args.items:
            row = side_by_side(
                items, args.seconds, work / f"items-{items}", args.publishing_interval
            )
            rows.append(row)
            print(
                json.dumps(
                    {"theirs": row.theirs and _asdict(row.theirs), "error": row.theirs_error}
                )
            )
            print(
                f"ThingsBoard IoT Gateway {TB_VERSION} OPC UA connector, {items} items", flush=True
            )
            print(table([row]), flush=True)
    print(table(rows))
    return 0


def _asdict(figures: PeerFigures) -> dict[str, Any]:
    return {name: getattr(figures, name) for name in PeerFigures.__slots__}


if __name__ == "__main__":
    raise SystemExit(main())

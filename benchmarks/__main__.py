"""Every benchmark in one run, and one Markdown report of the figures.

    .venv/bin/python -m benchmarks [--quick] [--no-peer] [--out FILE]

The full run takes about an hour (a 30-minute memory run among it); ``--quick`` runs the
same parts in about ten minutes, with short windows, for a first look. The peer, the
ThingsBoard IoT Gateway, is installed on first use into ``.bench/`` (from PyPI).
Figures are from one run on one machine: compare ratios within a report, not absolute
numbers across machines or runs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import tempfile
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks import harness, latency, outbox_drain, polling, recovery, rtu


@dataclass(frozen=True)
class Plan:
    poll_seconds: float
    long_seconds: float
    window: float
    changes: int
    slow_changes: int
    backlogs: tuple[int, ...]
    peer_seconds: float
    outage: float


FULL = Plan(60, 1800, 300, 200, 60, (10_000, 100_000), 60, 20)
QUICK = Plan(15, 120, 30, 30, 8, (10_000,), 20, 10)


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)
        for line in lines:
            print(line, flush=True)

    @contextlib.contextmanager
    def section(self, title: str) -> Iterator[None]:
        self.add("", f"## {title}", "")
        try:
            yield
        except Exception as err:  # one failed part must not cost the figures of the others
            self.add(f"Not measured: {err!r}", "", "```", traceback.format_exc(), "```")


@dataclass
class Run:
    plan: Plan
    peer: bool
    workdir: Path
    report: Report
    ours: dict[str, polling.PollingFigures]

    def polling(self) -> None:
        with self.report.section("Polling: 50 devices x 1,000 points every 1 s"):
            cases = ("coalesced/uvloop", "coalesced/asyncio", "off/uvloop", "off/asyncio")
            figures = polling.measure(
                50, 1000, 1.0, self.plan.poll_seconds, cases, self.workdir / "polling"
            )
            self.report.add(polling.table(figures))

    def memory(self) -> None:
        with self.report.section("Memory: 10,000 points configured, and the empty gateway"):
            seconds = self.plan.poll_seconds
            cases = ("coalesced/uvloop", "coalesced/asyncio")
            figures = polling.measure(10, 1000, 1.0, seconds, cases, self.workdir / "mem-10k")
            empty = polling.measure(1, 1, 1.0, seconds, cases[:1], self.workdir / "mem-1")
            self.report.add(polling.table(figures + empty))

    def steady(self) -> None:
        minutes = self.plan.long_seconds / 60
        with self.report.section(f"Steady load and memory: 50,000 points/s for {minutes:g} min"):
            (long_run,) = polling.measure(
                50, 1000, 1.0, self.plan.long_seconds, ("coalesced/uvloop",), self.workdir / "long"
            )
            self.ours["50x1000@1"] = long_run
            self.report.add(
                polling.table([long_run]), "", polling.windows(long_run, self.plan.window)
            )

    def latency(self) -> None:
        with self.report.section("Latency: sensor change to MQTT event and to verified relay"):
            self.report.add(latency.HEADER)
            for interval, load, changes, flaky in (
                (0.1, 0, self.plan.changes, 0),
                (0.1, 0, self.plan.changes, 7),  # one reply in seven fails
                (0.1, 50, self.plan.changes, 0),
                (1.0, 0, self.plan.slow_changes, 0),
            ):
                workdir = self.workdir / f"lat-{interval:g}-{load}-{flaky}"
                figures = latency.measure(interval, changes, load, 1000, workdir, flaky)
                self.report.add(figures.row())

    def outbox(self) -> None:
        with self.report.section("Outbox: durable enqueue, backlog drain, resume"):
            rows = [outbox_drain.measure(n, self.workdir) for n in self.plan.backlogs]
            self.report.add(outbox_drain.table(rows))
            resume = outbox_drain.measure_resume(self.workdir)
            self.report.add("", f"First backlog event {resume:.2f} s after the broker returned.")

    def outage(self) -> None:
        outage = self.plan.outage
        with self.report.section(f"Broker outage of {outage:g} s: 5 devices x 20 points at 0.1 s"):
            mine = recovery.measure(outage=outage, workdir=self.workdir / "recovery")
            self.report.add("CellSafe:", "", *(f"- {line}" for line in mine.lines()))
            if not self.peer:
                return
            from benchmarks.peers import thingsboard

            theirs = thingsboard.measure_recovery(
                outage=outage, workdir=self.workdir / "recovery-tb"
            )
            self.report.add("", "ThingsBoard:", "", *(f"- {line}" for line in theirs.lines()))
            self.report.add(
                "",
                f"Backlog delivered after the broker's return: {mine.backlog_s:.2f} s against "
                f"{theirs.backlog_s:.2f} s ({theirs.backlog_s / mine.backlog_s:.1f}x sooner).",
            )

    def rtu(self) -> None:
        with self.report.section("Modbus RTU: requests per second on one line"):
            seconds = max(5.0, self.plan.poll_seconds / 3)
            figures = [rtu.measure(b, seconds) for b in (9600, 19200)]
            self.report.add(rtu.table(figures))

    def opcua(self) -> None:
        with self.report.section("OPC UA: 10,000 monitored items changing every second"):
            from benchmarks import opcua

            seconds = min(self.plan.poll_seconds, 30)
            self.report.add(opcua.table([opcua.run(10_000, 200, seconds, self.workdir)]))
        if self.peer:
            with self.report.section("OPC UA side by side with the ThingsBoard IoT Gateway"):
                from benchmarks.peers import thingsboard_opcua

                seconds = int(min(self.plan.peer_seconds, 30))
                rows = [
                    thingsboard_opcua.side_by_side(n, seconds, self.workdir / f"opcua-tb-{n}")
                    for n in (1_000, 10_000)
                ]
                self.report.add(thingsboard_opcua.table(rows))

    def side(self) -> None:
        if self.peer:
            with self.report.section("Side by side with the ThingsBoard IoT Gateway"):
                self.report.add(*side_by_side(self.plan, self.workdir, self.ours))


PARTS = ("polling", "memory", "steady", "latency", "outbox", "outage", "rtu", "opcua", "side")


def run(plan: Plan, peer: bool, workdir: Path, parts: Iterable[str] = PARTS) -> Report:
    report = Report()
    report.add(
        "# Benchmark results",
        "",
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {harness.machine()}.",
    )
    runner = Run(plan, peer, workdir, report, {})
    for part in PARTS:
        if part in parts:
            getattr(runner, part)()
    return report


def side_by_side(plan: Plan, workdir: Path, ours: dict[str, polling.PollingFigures]) -> list[str]:
    from benchmarks.peers import thingsboard

    lines = [
        f"ThingsBoard IoT Gateway {thingsboard.TB_VERSION}, one Modbus connection per device,"
        " every value reported; CellSafe as shipped (block reads, uvloop). Same device "
        "server, same broker, measured the same way from outside.",
        "",
        "| load | offered points/s | delivered points/s (ours / TB) | points per CPU-s "
        "(ours / TB) | ratio | RSS MB (ours / TB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    loads: list[tuple[int, int, float]] = [(5, 20, 0.1), (20, 100, 0.1), (50, 1000, 1.0)]
    for devices, points, period in loads:
        key = f"{devices}x{points}@{period:g}"
        mine = (
            ours.get(key)
            or polling.measure(
                devices,
                points,
                period,
                plan.peer_seconds,
                ("coalesced/uvloop",),
                workdir / f"side-{key}",
            )[0]
        )
        theirs = thingsboard.measure_throughput(
            devices, points, period, plan.peer_seconds, workdir=workdir / f"side-tb-{key}"
        )
        lines.append(
            f"| {devices} x {points} every {period:g} s | {devices * points / period:,.0f} "
            f"| {mine.delivered_per_s:,.0f} / {theirs.points_per_s:,.0f} "
            f"| {mine.points_per_cpu_s:,.0f} / {theirs.points_per_cpu_s:,.0f} "
            f"| {mine.points_per_cpu_s / theirs.points_per_cpu_s:.1f}x "
            f"| {mine.rss_mb:.0f} / {theirs.rss_mb:.0f} |"
        )
    mine_lat = latency.measure(0.1, plan.changes, 0, 20, workdir / "side-latency")
    theirs_lat = thingsboard.measure_throughput(
        5, 20, 0.1, plan.peer_seconds, workdir=workdir / "side-tb-latency"
    )
    ours_p = harness.percentiles(mine_lat.to_event_ms)
    tb_p = theirs_lat.latency_ms
    lines += [
        "",
        "Sensor change to MQTT at 0.1 s polls, p50 / p95 / p99 ms: CellSafe (alarm event) "
        f"{ours_p[0]:.0f} / {ours_p[1]:.0f} / {ours_p[2]:.0f}; ThingsBoard (telemetry) "
        f"{tb_p[0]:.0f} / {tb_p[1]:.0f} / {tb_p[2]:.0f} "
        f"(p99 {tb_p[2] / ours_p[2]:.1f}x lower for CellSafe).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows, ten minutes")
    parser.add_argument("--no-peer", action="store_true", help="skip ThingsBoard")
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), help="parts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cellsafe-benchmarks-") as tmp:
        plan = QUICK if args.quick else FULL
        report = run(plan, not args.no_peer, Path(tmp), args.only)
    if args.out:
        args.out.write_text("\n".join(report.lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

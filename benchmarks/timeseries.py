"""Time-series back-fill benchmark: a backlog left in the log by an outage, written to a
real VictoriaMetrics by the time-series sink, then counted back.

    .venv/bin/python -m benchmarks.timeseries [--points 200000] [--per-record 50]

The log is filled first, with the database away (telemetry records of ``--per-record``
points each, one millisecond apart, within the last hour); then the server starts and
the sink drains the backlog, as after an outage. The rate is points the database took per
second of wall time, from the sink's start to an empty backlog; afterwards the server is
asked how many samples it holds, which must be every point exactly once. Figures go to
stdout as a Markdown table; copy them into benchmarks/REPORT.md.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.config.timeseries import TimeSeriesSection
from gateway.sinks.timeseries import SINK, TimeSeriesSink
from gateway.storage.log import EventLog, iso_utc
from simulators.victoria import VictoriaMetrics

SOURCE = {"site": "bench", "gateway": "gw-bench"}


@dataclass(frozen=True)
class Figures:
    points: int
    per_record: int
    batch: int
    fill_s: float
    drain_s: float
    stored: int

    @property
    def rate(self) -> float:
        return self.points / self.drain_s


def fill(log: EventLog, points: int, per_record: int) -> None:
    """``points`` samples in records of ``per_record``, as the telemetry writer stores them."""
    start = int(time.time()) - 3000  # within the last hour, one millisecond apart
    records = points // per_record
    for first in range(0, records, 1000):
        messages = {}
        for n in range(first, min(first + 1000, records)):
            stamp = iso_utc(start + n / 1000)
            messages[f"dev-{n}"] = {
                "ts": stamp,
                "device": "bench",
                "points": {
                    f"p{k}": {"value": n + k / 100, "quality": "good", "ts": stamp}
                    for k in range(per_record)
                },
            }
        # emit_telemetry takes one body per device: the key only has to be unique here
        log.emit_telemetry(messages)


def measure(points: int, per_record: int, workdir: Path, batch: int = 500) -> Figures:
    with EventLog.open(workdir / "log.db", SOURCE) as log:
        server = VictoriaMetrics(workdir / "vm")
        sink = TimeSeriesSink(TimeSeriesSection(url=server.url, batch=batch), log)
        began = time.perf_counter()
        fill(log, points, per_record)
        fill_s = time.perf_counter() - began
        assert log.lag(SINK).backlog == points // per_record
        with server:

            async def drain() -> float:
                async with sink:
                    began = time.perf_counter()
                    while log.lag(SINK).backlog:  # noqa: ASYNC110
                        await asyncio.sleep(0.005)
                    return time.perf_counter() - began

            drain_s = asyncio.run(drain())
            server.flush()
            time.sleep(1.5)  # new series take about a second to be searchable
            result = server.query('sum(count_over_time(point_value{site="bench"}[1h]))')
            stored = int(float(result["result"][0]["value"][1])) if result["result"] else 0
    return Figures(points, per_record, batch, fill_s, drain_s, stored)


def table(figures: list[Figures]) -> str:
    rows = [
        "| points | per record | records per turn | fill log (s) | back-fill (s)"
        " | points/s | stored once |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for f in figures:
        rows.append(
            f"| {f.points:,} | {f.per_record} | {f.batch} | {f.fill_s:.2f} | {f.drain_s:.2f}"
            f" | {f.rate:,.0f} | {'yes' if f.stored == f.points else f'no ({f.stored:,})'} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, nargs="+", default=[200_000])
    parser.add_argument("--per-record", type=int, default=50)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    figures = []
    for points in args.points:
        with tempfile.TemporaryDirectory() as workdir:
            figures.append(measure(points, args.per_record, Path(workdir), args.batch))
    print(table(figures))


if __name__ == "__main__":
    main()

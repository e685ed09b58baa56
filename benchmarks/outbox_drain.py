"""Outbox benchmark: durable enqueue rate, backlog drain rate, resume after an outage.

    .venv/bin/python -m benchmarks.outbox_drain [--events 10000 100000]

Runs its own Mosquitto on a free loopback port and a subscriber that checks every event
arrives once, in sequence order, with no gap. Figures go to stdout as one Markdown table;
copy them into benchmarks/REPORT.md with the machine they came from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks import harness
from gateway.config.settings import MqttSection
from gateway.storage.log import EventLog
from gateway.uplink.mqtt import MqttUplink
from gateway.uplink.session import ConnectionState
from gateway.uplink.topics import Topics
from simulators.mosquitto import MosquittoBroker
from vocab.events import Event

SOURCE = {"site": "bench", "gateway": "gw-bench"}


class Counter:
    """A subscriber that checks order and gaps as events arrive."""

    def __init__(self, port: int) -> None:
        self.seqs: list[int] = []
        self.first_at: float | None = None
        self.done = threading.Event()
        self.expected = 0
        self._ready = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-wms", clean_session=False
        )
        self._client.on_connect = lambda c, *_: c.subscribe("cellsafe/+/+/events/#", qos=1)
        self._client.on_subscribe = lambda *_: self._ready.set()
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 1)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError("benchmark subscriber could not subscribe")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self.seqs.append(json.loads(msg.payload)["seq"])
        if len(self.seqs) >= self.expected:
            self.done.set()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@dataclass
class Figures:
    events: int
    enqueue_per_s: float
    drain_per_s: float
    in_order: bool
    resume_s: float | None = None


async def _until(predicate: Callable[[], bool]) -> None:
    # Polling on purpose: the broker and the subscriber's thread signal nothing to the loop.
    while not predicate():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


def _events(n: int) -> list[Event]:
    return [
        Event("alarm.raised", {"alarm": {"id": f"bench.point{i}.high", "value": i}})
        for i in range(n)
    ]


async def _drain(outbox: EventLog, port: int, counter: Counter, expected: int) -> float:
    config = MqttSection(port=port, max_inflight=1000, reconnect_min=1, reconnect_max=1)
    topics = Topics("cellsafe", SOURCE["site"], SOURCE["gateway"])
    counter.expected = expected
    started = time.perf_counter()
    async with MqttUplink(config, "bench-gateway", topics, outbox, {"bench": True}):
        await _until(lambda: counter.done.is_set() and not outbox.count())
    return time.perf_counter() - started


def measure(n: int, workdir: Path) -> Figures:
    with MosquittoBroker(workdir / f"broker-{n}") as broker:
        counter = Counter(broker.port)
        try:
            with EventLog.open(workdir / f"outbox-{n}.sqlite3", SOURCE) as outbox:
                batch = 100  # the pipeline stores one poll's events in one transaction
                started = time.perf_counter()
                for i in range(0, n, batch):
                    outbox.emit(_events(min(batch, n - i)))
                enqueue = n / (time.perf_counter() - started)
                seconds = asyncio.run(_drain(outbox, broker.port, counter, n))
        finally:
            counter.close()
    in_order = counter.seqs == list(range(1, n + 1))
    return Figures(n, enqueue, n / seconds, in_order)


def measure_resume(workdir: Path, n: int = 1000) -> float:
    """Seconds from the broker's return to the first backlog event at the subscriber."""
    broker = MosquittoBroker(workdir / "broker-resume", persistence=True).start()
    counter = Counter(broker.port)
    try:
        with EventLog.open(workdir / "outbox-resume.sqlite3", SOURCE) as outbox:

            async def run() -> float:
                config = MqttSection(port=broker.port)  # reconnect back-off as shipped
                topics = Topics("cellsafe", SOURCE["site"], SOURCE["gateway"])
                async with MqttUplink(config, "bench-gateway", topics, outbox, {}) as uplink:
                    await _until(lambda: uplink.state is ConnectionState.CONNECTED)
                    broker.stop()
                    await _until(lambda: uplink.state is not ConnectionState.CONNECTED)
                    outbox.emit(_events(n))
                    counter.expected = n
                    await asyncio.sleep(2)  # an outage, however short, is longer than this
                    broker.start()
                    back = time.perf_counter()
                    await _until(counter.done.is_set)
                    assert counter.first_at is not None
                    return counter.first_at - back

            return asyncio.run(run())
    finally:
        counter.close()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cellsafe-bench-") as tmp:
        rows = [measure(n, Path(tmp)) for n in args.events]
        resume = measure_resume(Path(tmp))
    print(harness.machine())
    print(table(rows))
    print(f"\nfirst backlog event at the subscriber {resume:.2f} s after the broker returned")


def table(rows: list[Figures]) -> str:
    lines = [
        "| backlog | durable enqueue (events/s) | drain to Mosquitto (events/s) | order |",
        "|---:|---:|---:|---|",
    ]
    for row in rows:
        order = "in order, no gap" if row.in_order else "OUT OF ORDER / GAP"
        lines.append(
            f"| {row.events:,} | {row.enqueue_per_s:,.0f} | {row.drain_per_s:,.0f} | {order} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

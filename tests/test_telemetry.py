from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gateway.core.telemetry import Telemetry
from gateway.storage.log import EVERYTHING, EventLog
from vocab.samples import Sample

SOURCE = {"site": "plant-a", "gateway": "gw-01"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def poll(device: str, value: float) -> list[Sample]:
    return [
        Sample.good(f"{device}.t", value, 0.0, 0.0),
        Sample.good(f"{device}.rh", value, 0.0, 0.0),
    ]


def sent(outbox: EventLog) -> list[tuple[str, dict[str, float]]]:
    rows = [json.loads(s.record) for s in outbox.read(0, EVERYTHING, 1000)]
    return [(r["device"], {k: p["value"] for k, p in r["points"].items()}) for r in rows]


def test_a_device_polled_once_per_interval_reports_every_poll(tmp_path: Path) -> None:
    clock = Clock()
    with EventLog.open(tmp_path / "o.db", SOURCE) as outbox:
        outbox.cursor("mqtt")
        telemetry = Telemetry(outbox, 1.0, clock)
        for n, jitter in enumerate([0.0, 0.998, 1.003, 0.995, 1.4, 0.6, 1.0]):
            clock.now += jitter
            telemetry(poll("a", n))
            telemetry.flush()
        assert [points["t"] for _, points in sent(outbox)] == [0, 1, 2, 3, 4, 5, 6]


def test_faster_polls_are_held_back_and_the_latest_values_go_with_the_next_message(
    tmp_path: Path,
) -> None:
    clock = Clock()
    with EventLog.open(tmp_path / "o.db", SOURCE) as outbox:
        outbox.cursor("mqtt")
        telemetry = Telemetry(outbox, 1.0, clock)
        for n in range(35):  # 3.5 s of polls every 0.1 s
            telemetry(poll("a", n))
            telemetry.flush()
            clock.now += 0.1
        # The spare message goes at the start; then one per second, never more.
        assert [points["t"] for _, points in sent(outbox)] == [0, 1, 10, 20, 30]


def test_devices_due_in_one_turn_of_the_loop_share_one_flush(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "o.db", SOURCE) as outbox:
        outbox.cursor("mqtt")
        batches: list[int] = []
        outbox.subscribe(lambda: batches.append(outbox.count()))

        async def polls() -> None:
            telemetry = Telemetry(outbox, 1.0)
            for device in ("a", "b", "c"):
                telemetry(poll(device, 1.0))
            await asyncio.sleep(0)

        asyncio.run(polls())
        assert [device for device, _ in sent(outbox)] == ["a", "b", "c"]
        assert batches == [3]

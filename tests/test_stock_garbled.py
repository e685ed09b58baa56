"""A reader that sends only garbage: summarised and alarmed, not one event and beep per read.

The rule on its own with time moved by hand, then a reader on a pseudo-terminal sending
what a reader on the wrong baud rate sends (bytes that decode to nothing, with a CR now
and then) through the real driver, the stock service, the event log and the alarm manager.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from drivers.scanner import ScannerDriver
from drivers.scanner_config import ScannerConfig
from gateway.config import load_settings
from gateway.core.stock import StockService
from gateway.storage.log import EventLog
from rules.alarms import AlarmManager, ConditionChange
from simulators.scanner_port import ScannerPort
from stock.garbled import GarbledReads
from tests import contract
from tests.lab import until, write_config
from vocab.samples import Sample
from vocab.scans import Scan

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "cellsafe/plant-a/gw-01/events/stock"
ALARM = "device.dock-1.garbled"
# What a reader at 19 200 baud looks like to a port set to 9 600: no ASCII left, a CR
# (0x0D) now and then ending a "read".
WRONG_BAUD = b"\x80\xf8\x00\xfe\x78\x80\r"


# -- the rule --------------------------------------------------------------------------


def test_a_person_now_and_then_keeps_every_event() -> None:
    rule = GarbledReads({"dock-1": (5, 10.0)})
    changes = [rule.read("dock-1", 3.0 * i, 100.0 + i, "unreadable", "\ufffd") for i in range(20)]
    changes += [rule.read("dock-1", 60.0 + 0.1 * i, 200.0, "unknown", "NOWHERE") for i in range(9)]
    assert all(c.keep and c.alarm is None and c.summary is None for c in changes)
    assert not rule.garbled("dock-1")


def test_a_flood_is_counted_summarised_and_ends() -> None:
    rule = GarbledReads({"dock-1": (5, 10.0)}, summary_every=60.0)
    first = [rule.read("dock-1", 0.25 * i, 1000.0 + i, "unreadable", f"x{i}") for i in range(4)]
    assert all(c.keep for c in first)
    start = rule.read("dock-1", 1.0, 1004.0, "unreadable", "x4")
    assert (start.keep, start.alarm, start.summary) == (False, True, None)
    assert "5 within 10 s" in start.message
    # Printable garbage while garbled is garbage too; another reader is not touched.
    mid = [rule.read("dock-1", 1.0 + 0.25 * i, 1005.0, "unknown", "Zq") for i in range(10)]
    assert not any(c.keep or c.summary for c in mid)
    assert rule.read("dock-2", 2.0, 1005.0, "unreadable", "y").keep
    periodic = rule.read("dock-1", 61.0, 1060.0, "unreadable", "last")
    assert periodic.summary is not None and periodic.alarm is None
    assert periodic.summary.body["count"] == 12 and periodic.summary.body["data"] == "last"
    assert rule.quiet(70.0) == []  # 9 s since the last one: still garbled
    assert rule.deadline() == 71.0
    (name, end), *_ = rule.quiet(71.0)
    assert (name, end.alarm, end.summary) == ("dock-1", False, None)  # nothing left to sum
    assert rule.read("dock-1", 72.0, 1072.0, "unreadable", "z").keep  # counting anew


def test_a_usable_read_ends_it_with_the_rest_summed() -> None:
    rule = GarbledReads({"dock-1": (3, 5.0)})
    for i in range(10):
        rule.read("dock-1", 0.1 * i, 500.0 + i, "unreadable", "g")
    end = rule.read("dock-1", 2.0, 520.0, "usable", "CMD:PICK")
    assert end.keep and end.alarm is False and end.summary is not None
    assert end.summary.body["count"] == 8 and end.summary.ts == 509.0
    assert rule.flush() == [] and rule.deadline() is None


# -- over a pseudo-terminal --------------------------------------------------------------


class Wiring:
    """The driver's publisher: scans to the stock service, the rest nowhere."""

    def __init__(self, service: StockService) -> None:
        self.service = service

    def samples(self, samples: Sequence[Sample], /) -> None:
        pass

    def scans(self, scans: Sequence[Scan], /) -> None:
        self.service.scans(scans)


def records(log: EventLog) -> list[dict[str, Any]]:
    found = [json.loads(r.record) for r in log.read(0, frozenset({"event"}), 1000)]
    for record in found:
        assert contract.problems(TOPIC, record) == []
    return found


async def heard(port: ScannerPort, wait: float) -> bytes:
    """The signals the reader got, as far as they came within ``wait`` seconds."""
    got = b""
    while chunk := await asyncio.get_running_loop().run_in_executor(None, port.received, wait):
        got += chunk
    return got


def gateway(tmp_path: Path, port: Path, window: float) -> Any:
    data = {
        "gateway": {"site": "plant-a", "id": "gw-01", "data_dir": str(tmp_path / "state")},
        "stock": {"master_file": str(ROOT / "config" / "stock-master.toml")},
        "devices": [
            {
                "name": "dock-1",
                "driver": "scanner",
                "transport": {"type": "serial", "port": str(port)},
                "reject_signal": "\u0007",
                "garbled_after": 5,
                "garbled_window": window,
            }
        ],
    }
    return load_settings(write_config(tmp_path, data))


def test_a_reader_on_the_wrong_baud_rate(tmp_path: Path, reader: ScannerPort) -> None:
    settings = gateway(tmp_path, reader.link, 1.0)
    (config,) = [d for d in settings.devices if isinstance(d, ScannerConfig)]
    alarms = AlarmManager(StockService.definitions(settings))
    raised: list[tuple[str, bool]] = []

    def conditions(change: ConditionChange) -> None:
        raised.append((change.alarm_id, change.active))
        alarms.on_conditions([change])

    async def play(log: EventLog) -> None:
        driver = ScannerDriver(config)
        service = StockService.open(settings, {"dock-1": driver}, log, conditions)
        assert service is not None
        await driver.start(Wiring(service))
        try:
            async with asyncio.timeout(5.0):
                await until(lambda: driver.connected)
                reader.send(WRONG_BAUD * 30)
                await until(lambda: raised == [(ALARM, True)])
                await service.drain()
                assert alarms.records[ALARM].condition
                assert await heard(reader, 0.2) == b"\x07" * 4  # four beeps, then none
                reader.send(b"CMD:PUTAWAY\rNOWHERE\r")  # a person scans again
                await until(lambda: len(raised) == 2)
                await service.drain()
                assert await heard(reader, 0.2) == b"\x07"  # the unknown location's beep
                reader.send(WRONG_BAUD * 10)  # garbled again, then silent
                await until(lambda: len(raised) == 4)
        finally:
            await driver.close()
            if service is not None:
                await service.close()

    source = {"site": "plant-a", "gateway": "gw-01"}
    with EventLog.open(tmp_path / "log.sqlite3", source) as log:
        asyncio.run(play(log))
        said = [(r["type"], r.get("reason"), r.get("count")) for r in records(log)]
    assert raised == [(ALARM, True), (ALARM, False), (ALARM, True), (ALARM, False)]
    assert not alarms.records[ALARM].condition
    unreadable = ("stock.rejected", "unreadable", None)
    assert said == [
        *[unreadable] * 4,
        ("stock.rejected", "unreadable", 26),  # the rest, when a usable read ended it
        ("stock.rejected", "unknown_location", None),  # a person's bad scan: its own event
        *[unreadable] * 4,
        ("stock.rejected", "unreadable", 6),  # the rest, when it fell quiet
    ]


def test_an_alarm_from_before_a_restart_clears_when_the_reader_is_quiet(tmp_path: Path) -> None:
    settings = gateway(tmp_path, tmp_path / "no-reader", 0.2)
    raised: list[tuple[str, bool]] = []

    async def play(log: EventLog) -> None:
        service = StockService.open(
            settings, {}, log, lambda c: raised.append((c.alarm_id, c.active)), {ALARM}
        )
        assert service is not None
        async with asyncio.timeout(3.0):
            await until(lambda: bool(raised))
        await service.close()

    with EventLog.open(tmp_path / "log.sqlite3", {"site": "plant-a", "gateway": "gw-01"}) as log:
        asyncio.run(play(log))
    assert raised == [(ALARM, False)]


def test_dropped_frames_are_said_once_per_change(
    reader: ScannerPort, caplog: pytest.LogCaptureFixture
) -> None:
    config = ScannerConfig.model_validate(
        {
            "name": "dock-1",
            "driver": "scanner",
            "transport": {"type": "serial", "port": str(reader.link)},
            "max_length": 16,
        }
    )
    reads: list[Scan] = []

    class Keep:
        def samples(self, samples: Sequence[Sample], /) -> None:
            pass

        def scans(self, scans: Sequence[Scan], /) -> None:
            reads.extend(scans)

    def got(n: int) -> bool:
        return len(reads) == n

    async def play() -> None:
        driver = ScannerDriver(config)
        await driver.start(Keep())
        try:
            async with asyncio.timeout(5.0):
                await until(lambda: driver.connected)
                for run in (1, 2):
                    for _ in range(8):  # frame after frame too long: framing set wrong
                        reader.send(b"x" * 40 + b"\r")
                        await asyncio.sleep(0.01)
                    reader.send(b"OK\r")
                    await until(functools.partial(got, run))
        finally:
            await driver.close()

    with caplog.at_level(logging.WARNING, logger="drivers.scanner"):
        asyncio.run(play())
    said = [r.getMessage() for r in caplog.records if r.name == "drivers.scanner"]
    assert [m.split(": ", 1)[1][:24] for m in said] == [
        "garbled frames dropped (",
        "reads framed again after",
    ] * 2

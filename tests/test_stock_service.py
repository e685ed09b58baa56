"""The stock service on a real event log: the ledger and the misplacement survive a
restart; the master downlink's refusals, each with its event."""

from __future__ import annotations

import asyncio
import json
import threading
import tomllib
from pathlib import Path
from typing import Any

import pytest

import gateway.core.stock as stock_service
from gateway.config import load_settings
from gateway.core.stock import StockService
from gateway.storage.log import EventLog
from gateway.uplink.signing import Principal, new_nonce, sign
from rules.alarms import ConditionChange
from stock import epcis
from tests.lab import write_config
from vocab.scans import Scan

ROOT = Path(__file__).resolve().parent.parent
BASE = "cellsafe/plant-a/gw-01"
KEY = b"wms-stock-key-0123456789abcdef0123456"
SIGNERS = {"wms-stock": Principal("wms-stock", frozenset({"stock"}), (KEY,))}
ELECTROLYTE = "]C10104012345000023\x1d10E77\x1d3704"


def settings(tmp_path: Path) -> Any:
    data = {
        "gateway": {"site": "plant-a", "id": "gw-01", "data_dir": str(tmp_path / "state")},
        "stock": {"master_file": str(ROOT / "config" / "stock-master.toml")},
        "devices": [
            {
                "name": "dock-1",
                "driver": "scanner",
                "transport": {"type": "tcp", "host": "h", "port": 1},
            }
        ],
    }
    return load_settings(write_config(tmp_path, data))


def records(log: EventLog) -> list[dict[str, Any]]:
    return [json.loads(r.record) for r in log.read(0, frozenset({"event"}), 100)]


def feed(service: StockService, scans: list[Scan]) -> None:
    async def play() -> None:
        service.scans(scans)
        await service.drain()

    asyncio.run(play())


def token(master: dict[str, Any], key: bytes = KEY, iat: int = 1_700_000_000) -> bytes:
    jws = sign(
        key,
        "wms-stock",
        BASE,
        "stock-master",
        {"master": master},
        request_id="m-1",
        issued_at=iat,
        nonce=new_nonce(),
    )
    return json.dumps({"jws": jws}).encode()


def test_the_ledger_and_the_misplacement_survive_a_restart(tmp_path: Path) -> None:
    s = settings(tmp_path)
    changes: list[ConditionChange] = []
    source = {"site": "plant-a", "gateway": "gw-01"}
    with EventLog.open(tmp_path / "log.sqlite3", source) as log:
        service = StockService.open(s, {}, log, changes.append)
        assert service is not None
        scans = [
            Scan(scanner="dock-1", data=t, symbology="barcode", ts=1.0 + i)
            for i, t in enumerate(["CMD:PUTAWAY", "C-02", ELECTROLYTE])
        ]
        feed(service, scans)
        assert [r["type"] for r in records(log)] == ["stock.stored"]
        assert [(c.alarm_id, c.active) for c in changes] == [("stock.putaway.misplaced", True)]
    with EventLog.open(tmp_path / "log.sqlite3", source) as log:
        again = StockService.open(s, {}, log, changes.append)
        assert again is not None and again.stock.misplaced
        feed(
            again,
            [
                Scan(scanner="dock-1", data=t, symbology="barcode", ts=9.0)
                for t in ["CMD:MOVE", "C-02", ELECTROLYTE, "E-01"]
            ],
        )
        assert [(c.alarm_id, c.active) for c in changes][-1] == ("stock.putaway.misplaced", False)


def test_master_downlink_refusals(tmp_path: Path) -> None:
    s = settings(tmp_path)
    master = tomllib.loads((ROOT / "config" / "stock-master.toml").read_text())
    with EventLog.open(tmp_path / "log.sqlite3", {"site": "plant-a", "gateway": "gw-01"}) as log:
        service = StockService.open(s, {}, log, lambda _: None)
        assert service is not None
        service.master_message(b"not json", BASE, SIGNERS)
        service.master_message(token({**master, "version": 3}, b"x" * 37), BASE, SIGNERS)
        service.master_message(token({**master, "version": 0}), BASE, SIGNERS)
        service.master_message(token({**master, "version": 4, "zones": {}}), BASE, SIGNERS)
        service.master_message(token({**master, "version": 4}), BASE, SIGNERS)  # years old: fine
        service.master_message(token({**master, "version": 4}), BASE, SIGNERS)  # repeat: silent
        service.master_message(b"", BASE, SIGNERS)  # retained message cleared: nothing
        said = [(r["type"], r.get("reason", r.get("version"))) for r in records(log)]
    assert said == [
        ("stock.master_refused", 'malformed: the master is {"jws": ...}'),
        ("stock.master_refused", "signature does not match a key of principal 'wms-stock'"),
        ("stock.master_refused", "version 0 is older than 1 in force"),
        (
            "stock.master_refused",
            "invalid master data: locations.C-01.zone: no zone 'cell-store'; locations.C-02.zone:"
            " no zone 'cell-store'; locations.C-03.zone: no zone 'cell-store'; locations.E-01"
            ".zone: no zone 'electrolyte-store'; locations.M-01.zone: no zone 'mixed';"
            " locations.M-02.zone: no zone 'mixed'",
        ),
        ("stock.master_updated", 4),
    ]
    assert service.store.current.version == 4


def test_a_reader_away_longer_than_alarm_after_is_an_alarm(tmp_path: Path) -> None:
    from drivers.scanner import ScannerDriver
    from drivers.scanner_config import ScannerConfig
    from gateway.bus.samples import SampleBus
    from gateway.core.readers import ReaderWatch
    from simulators.scanner_port import ScannerPort
    from tests.lab import until

    changes: list[tuple[str, bool]] = []
    port = ScannerPort(tmp_path / "usb-reader-if00")
    config = ScannerConfig.model_validate(
        {
            "name": "dock-1",
            "driver": "scanner",
            "transport": {"type": "serial", "port": str(port.link)},
            "alarm_after": 0.3,
            "reconnect_min": 0.05,
            "reconnect_max": 0.05,
        }
    )

    class Publisher:
        def __init__(self, bus: SampleBus) -> None:
            self.samples = bus

        def scans(self, scans: Any, /) -> None:
            pass

    async def play() -> None:
        watch = ReaderWatch({"dock-1": config}, lambda c: changes.append((c.alarm_id, c.active)))
        bus = SampleBus()
        bus.subscribe(watch)
        driver = ScannerDriver(config)
        with port:
            await driver.start(Publisher(bus))
            try:
                async with asyncio.timeout(5):
                    await until(lambda: driver.connected)
                    port.pull()  # out and back within alarm_after: nothing
                    await until(lambda: not driver.connected)
                    port.plug()
                    await until(lambda: driver.connected)
                    await asyncio.sleep(0.4)
                    assert changes == []
                    port.pull()  # out for longer: the alarm, then cleared when back
                    await until(lambda: changes == [("device.dock-1.comm", True)])
                    port.plug()
                    await until(lambda: len(changes) == 2)
            finally:
                await driver.close()
                watch.close()
        assert changes[-1] == ("device.dock-1.comm", False)

    asyncio.run(play())


def test_a_burst_of_reads_is_hashed_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EPCIS event hash costs milliseconds an event: a burst of reads must not hold
    the event loop (and the alarm path on it) for the whole burst."""
    hashed_on: list[int] = []
    real = epcis.event_hash

    def spy(event: dict[str, Any]) -> str:
        hashed_on.append(threading.get_ident())
        return real(event)

    monkeypatch.setattr(epcis, "event_hash", spy)
    reads = ["CMD:PUTAWAY", "C-01", *(f"(01)04012345000016(21)S{i}" for i in range(40))]
    burst = [Scan(scanner="dock-1", data=t, symbology="barcode", ts=1.0) for t in reads]
    with EventLog.open(tmp_path / "log.sqlite3", {"site": "plant-a", "gateway": "gw-01"}) as log:
        service = StockService.open(settings(tmp_path), {}, log, lambda _: None)
        assert service is not None

        async def play() -> int:
            service.scans(burst)
            assert records(log) == []  # queued: the reader's call returns at once
            await service.drain()
            return threading.get_ident()

        loop_thread = asyncio.run(play())
        stored = [r["epcis"]["epcList"] for r in records(log)]
    assert stored == [[f"urn:epc:id:sgtin:4012345.000001.S{i}"] for i in range(40)]
    assert len(hashed_on) == 40 and loop_thread not in hashed_on


def test_a_reader_flood_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stock_service, "MAX_QUEUED", 5)
    flood = [Scan(scanner="dock-1", data="JUNK", symbology="barcode", ts=1.0)] * 8
    with EventLog.open(tmp_path / "log.sqlite3", {"site": "plant-a", "gateway": "gw-01"}) as log:
        service = StockService.open(settings(tmp_path), {}, log, lambda _: None)
        assert service is not None
        feed(service, flood)
        assert service.dropped == 3
        assert [r["reason"] for r in records(log)] == ["unknown_location"] * 5


def test_a_master_of_many_locations_is_taken(tmp_path: Path) -> None:
    """A warehouse's master is far longer than a command (16 KiB): 500 more locations."""
    master = tomllib.loads((ROOT / "config" / "stock-master.toml").read_text())
    master["version"] = 2
    for i in range(500):
        master["locations"][f"R-{i:04d}"] = {
            "zone": "mixed",
            "neighbours": [f"R-{i - 1:04d}"] if i else [],
            "gln": f"urn:epc:id:sgln:0401234.00001.R-{i:04d}",
        }
    with EventLog.open(tmp_path / "log.sqlite3", {"site": "plant-a", "gateway": "gw-01"}) as log:
        service = StockService.open(settings(tmp_path), {}, log, lambda _: None)
        assert service is not None
        service.master_message(token(master), BASE, SIGNERS)
        service.master_message(json.dumps({"jws": "x" * (5 << 20)}).encode(), BASE, SIGNERS)
        said = [(r["type"], r.get("reason", r.get("version"))) for r in records(log)]
    assert said == [
        ("stock.master_updated", 2),
        ("stock.master_refused", "malformed: the JWS is longer than 4194304 characters"),
    ]
    assert len(service.store.current.locations) == 506


def test_a_reader_alarm_from_before_a_restart_clears_when_the_reader_is_back() -> None:
    from drivers.scanner_config import CONNECTED, ScannerConfig
    from gateway.core.readers import ReaderWatch
    from vocab.samples import Sample

    config = ScannerConfig.model_validate(
        {
            "name": "dock-1",
            "driver": "scanner",
            "transport": {"type": "tcp", "host": "x", "port": 1},
        }
    )
    changes: list[tuple[str, bool]] = []

    async def play() -> None:
        watch = ReaderWatch(
            {"dock-1": config},
            lambda c: changes.append((c.alarm_id, c.active)),
            active={"device.dock-1.comm"},  # restored: away when the gateway stopped
        )
        watch([Sample.good(f"dock-1.{CONNECTED}", True, 0.0, 0.0)])
        watch.close()

    asyncio.run(play())
    assert changes == [("device.dock-1.comm", False)]

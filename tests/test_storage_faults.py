"""A full disk under the gateway's data directory: detection and relays go on, no event
is lost, everything resumes when space comes back. The disk is a real, small tmpfs."""

from __future__ import annotations

import contextlib
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.lab import SimulatorThread
from simulators.mosquitto import MosquittoBroker
from tests.conftest import Lab
from tests.lab import (
    GatewayProcess,
    WmsSubscriber,
    hot_zone,
    lab_config,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as out:
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


def start(
    tmp_path: Path, small_disk: Path, broker: MosquittoBroker, lab: Lab
) -> tuple[SimulatorThread, WmsSubscriber, GatewayProcess]:
    """A hot zone and the gateway with its data directory on ``small_disk``."""
    sim = lab.sim(hot_zone(), 3.0)
    wms = lab.wms(broker.port)
    data = tomllib.loads(
        lab_config(tmp_path, sim.port, broker.port, off_delay=2.0, rate_of_rise=100.0).read_text()
    )
    data["gateway"]["data_dir"] = str(small_disk / "state")
    gateway = lab.gateway(write_config(tmp_path, data))
    return sim, wms, gateway


def test_a_full_disk_stops_neither_alarms_nor_relays_and_loses_no_event(
    tmp_path: Path, small_disk: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    sim, wms, gateway = start(tmp_path, small_disk, broker, lab)
    wait_until(lambda: wms.state.get("status", {}).get("state") == "online", 30, "the birth")

    filler = fill(small_disk)
    # The zone heats up while nothing can be written: the fan must still be switched on,
    # and the WMS sees the storage alarm at once in the retained alarm state.
    wait_until(lambda: sim.warehouse.relays[0] is True, 60, "the fan switched on")
    wait_until(
        lambda: any(
            a["id"] == "gateway.storage.fault"
            for a in wms.state.get("alarms", {}).get("alarms", [])
        ),
        30,
        "the storage alarm in the retained state",
    )
    assert wms.snapshot() == []  # no event could be stored, so none was sent yet
    assert gateway.alive

    filler.unlink()
    wait_until(lambda: sim.warehouse.finished, 90, "the scenario to end")
    wait_until(
        lambda: (
            "gateway.storage.fault"
            in [
                e.get("alarm", {}).get("id") for e in wms.snapshot() if e["type"] == "alarm.cleared"
            ]
        ),
        30,
        "the storage alarm cleared over MQTT",
    )
    events = wms.snapshot()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # none lost
    types = [(e["type"], e.get("alarm", {}).get("id")) for e in events]
    assert ("alarm.raised", "gateway.storage.fault") in types
    assert ("alarm.raised", "electrolyte-store.temperature.high") in types
    assert ("actuator.switched", None) in types
    assert gateway.terminate() == 0


def test_a_read_only_data_directory_at_start_up_is_a_storage_alarm_not_a_crash(
    tmp_path: Path, small_disk: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    (small_disk / "state").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    sim, wms, gateway = start(tmp_path, small_disk, broker, lab)

    def shown() -> list[str]:
        return [a["id"] for a in wms.state.get("alarms", {}).get("alarms", [])]

    wait_until(lambda: "gateway.storage.fault" in shown(), 30, "the storage alarm")
    wait_until(lambda: sim.warehouse.relays[0] is True, 60, "the fan switched on")
    assert gateway.alive
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    wait_until(lambda: (small_disk / "state" / "outbox.sqlite3").exists(), 30, "the log file")
    wait_until(
        lambda: (
            ("alarm.raised", "electrolyte-store.temperature.high")
            in [(e["type"], e.get("alarm", {}).get("id")) for e in wms.snapshot()]
        ),
        30,
        "the held events at the WMS",
    )
    events = wms.snapshot()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert gateway.terminate() == 0

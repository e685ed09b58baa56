"""How the OPC UA benchmarks count a change as made and delivered, and what the ThingsBoard
peer is configured with (no ThingsBoard is installed or run here)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.opcua import in_bursts, server_bursts
from benchmarks.peers.thingsboard_opcua import MIN_PUBLISHING_MS, connector_config


def test_only_bursts_begun_in_the_window_count_and_their_stamps_with_them(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(
        "listening\n"
        "tick 99.000500 1.400000\n"  # begun before the window, ends inside it
        "tick 101.000200 0.600000\n"
        "tick 102.000300 0.500000\n"
        "tick 103.000100 0.300000\n"  # begun after the window
    )
    bursts = server_bursts(log, 100.0, 103.0)
    assert bursts == [(101.0002, 101.6002), (102.0003, 102.5003)]
    assert in_bursts(101.3, bursts) and in_bursts(102.0003, bursts)
    # A peer's stamp in whole milliseconds may fall just before the burst's first write.
    assert in_bursts(101.000, bursts)
    # The overrun of the burst begun before the window, and the gap between two bursts.
    assert not in_bursts(100.2, bursts)
    assert not in_bursts(101.8, bursts)
    assert not in_bursts(103.1, bursts)


def test_thingsboard_subscribes_to_every_item_by_nodeid_stamped_at_the_source() -> None:
    config = connector_config(4840, 3, 50)
    server = config["server"]
    assert server["url"] == "opc.tcp://127.0.0.1:4840"
    assert server["enableSubscriptions"] is True
    assert server["subCheckPeriodInMillis"] == 50  # TB raises it to MIN_PUBLISHING_MS itself
    assert MIN_PUBLISHING_MS == 100
    (device,) = config["mapping"]
    assert device["deviceNodePattern"] == "ns=2;s=Bench"
    assert [t["value"] for t in device["timeseries"]] == [
        "${ns=2;s=Bench.0}",
        "${ns=2;s=Bench.1}",
        "${ns=2;s=Bench.2}",
    ]
    assert {t["timestampLocation"] for t in device["timeseries"]} == {"SourceTimestamp"}

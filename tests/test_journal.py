"""Log records into the journal's native socket, with DEVICE, ALARM, RELAY and SEQ fields;
tested against a real unix datagram socket standing in for journald's."""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli.journal import JournalHandler
from simulators.mosquitto import MosquittoBroker
from tests.conftest import Lab
from tests.lab import hot_zone, lab_config, wait_until


def decode(datagram: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    rest = datagram
    while rest:
        line, _, after = rest.partition(b"\n")
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()] = value.decode()
            rest = after
        else:  # binary form: key, newline, 64-bit length, value, newline
            (size,) = struct.unpack("<Q", after[:8])
            fields[line.decode()] = after[8 : 8 + size].decode()
            rest = after[8 + size + 1 :]
    return fields


@pytest.fixture
def journald(tmp_path: Path) -> Iterator[socket.socket]:
    path = tmp_path / "journal.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    try:
        yield sock
    finally:
        sock.close()


def test_a_record_carries_its_fields_and_a_multi_line_message(
    journald: socket.socket,
) -> None:
    handler = JournalHandler(Path(journald.getsockname()))
    logger = logging.getLogger("test.journal")
    logger.addHandler(handler)
    try:
        logger.warning("device %s lost: %s", "pump", "a\nb", extra={"device": "pump"})
        try:
            raise ValueError("two\nlines")
        except ValueError:
            logger.exception("relay failed", extra={"relay": "fan-1", "seq": 7})
    finally:
        logger.removeHandler(handler)
        handler.close()
    first = decode(journald.recv(65536))
    assert first["MESSAGE"] == "device pump lost: a\nb"
    assert first["PRIORITY"] == "4" and first["DEVICE"] == "pump"
    assert first["SYSLOG_IDENTIFIER"] == "cellsafe" and first["LOGGER"] == "test.journal"
    second = decode(journald.recv(65536))
    assert second["RELAY"] == "fan-1" and second["SEQ"] == "7" and second["PRIORITY"] == "3"
    assert "ValueError" in second["MESSAGE"]


@pytest.mark.integration
def test_under_systemd_the_gateway_writes_events_with_seq_and_alarm_to_the_journal(
    tmp_path: Path, journald: socket.socket, broker: MosquittoBroker, lab: Lab
) -> None:
    sim = lab.sim(hot_zone(), 3.0)
    config = lab_config(tmp_path, sim.port, broker.port, off_delay=2.0, rate_of_rise=100.0)
    env = {"JOURNAL_STREAM": "8:1", "CELLSAFE_JOURNAL_SOCKET": journald.getsockname()}
    lab.gateway(config, env=env)
    seen: list[dict[str, str]] = []

    def raised() -> bool:
        try:
            seen.append(decode(journald.recv(65536)))
        except TimeoutError:
            return False
        return any(f.get("ALARM") == "electrolyte-store.temperature.high" for f in seen)

    wait_until(raised, 60, "the alarm's journal line")
    line = next(f for f in seen if f.get("ALARM") == "electrolyte-store.temperature.high")
    assert line["SEQ"] == "1" and line["LOGGER"] == "gateway.events"
    assert line["MESSAGE"].startswith("event 1 alarm.raised")

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.lab import SimulatorThread
from simulators.mosquitto import MosquittoBroker
from simulators.net import free_port
from simulators.pty_pair import PtyPair
from simulators.rtu_line import RtuLine
from simulators.scanner_port import ScannerPort
from simulators.scenario import Scenario
from tests.lab import GatewayProcess, NotifySocket, WmsSubscriber


class Lab:
    """What an integration test starts: simulators, gateway processes, WMS subscribers.

    Everything started here is stopped when the test ends, pass or fail; every message a
    subscriber saw must have kept the contract.
    """

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._simulators: list[SimulatorThread] = []
        self._gateways: list[GatewayProcess] = []
        self._subscribers: list[WmsSubscriber] = []
        self._ptys: list[PtyPair] = []

    def pty_pair(self, baudrate: int | None = None) -> PtyPair:
        """A serial line in software: serve on ``server_path``, connect to ``client_path``;
        with ``baudrate``, an ``RtuLine`` that keeps that bit rate's timing."""
        pair = (PtyPair() if baudrate is None else RtuLine(baudrate)).__enter__()
        self._ptys.append(pair)
        return pair

    def sim(
        self, scenario: Scenario, speed: float = 1.0, rtu_port: str | None = None
    ) -> SimulatorThread:
        sim = SimulatorThread(scenario, free_port(), speed=speed, rtu_port=rtu_port)
        sim.__enter__()
        self._simulators.append(sim)
        return sim

    def gateway(self, config: Path, env: dict[str, str] | None = None) -> GatewayProcess:
        process = GatewayProcess(config, self.tmp_path / "gateway.log", env).start()
        self._gateways.append(process)
        return process

    def wms(self, port: int, **options: Any) -> WmsSubscriber:
        subscriber = WmsSubscriber(port, **options)
        self._subscribers.append(subscriber)
        return subscriber

    def close(self) -> list[str]:
        for process in self._gateways:
            if process.alive:
                process.kill()
        for subscriber in self._subscribers:
            subscriber.close()
        for sim in self._simulators:
            sim.stop()
        for pair in self._ptys:
            pair.close()
        return [line for s in self._subscribers for line in s.invalid]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker", persistence=True) as running:
        yield running


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[ScannerPort]:
    """A USB barcode reader's serial port, plugged in for the test and pulled after it."""
    with ScannerPort(tmp_path / "usb-reader-if00") as port:
        yield port


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(str(tmp_path / "notify.sock"))
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    rig = Lab(tmp_path)
    try:
        yield rig
    finally:
        invalid = rig.close()
    assert not invalid, "messages broke the contract:\n" + "\n".join(invalid[:20])

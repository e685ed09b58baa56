from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulators.lab import SimulatorThread
from simulators.mosquitto import MosquittoBroker
from simulators.net import free_port
from simulators.scenario import Scenario
from tests.lab import GatewayProcess, WmsSubscriber


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker", persistence=True) as running:
        yield running


@pytest.fixture
def make_simulator() -> Iterator[Callable[[Scenario, float], SimulatorThread]]:
    started: list[SimulatorThread] = []

    def go(scenario: Scenario, speed: float = 1.0) -> SimulatorThread:
        sim = SimulatorThread(scenario, free_port(), speed=speed)
        sim.__enter__()
        started.append(sim)
        return sim

    yield go
    for sim in started:
        sim.stop()


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []

    def go(config: Path, env: dict[str, str] | None = None) -> GatewayProcess:
        process = GatewayProcess(config, tmp_path / "gateway.log", env).start()
        started.append(process)
        return process

    yield go
    for process in started:
        if process.alive:
            process.kill()


@pytest.fixture
def make_subscriber() -> Iterator[Callable[[int], WmsSubscriber]]:
    started: list[WmsSubscriber] = []

    def go(port: int) -> WmsSubscriber:
        subscriber = WmsSubscriber(port)
        started.append(subscriber)
        return subscriber

    yield go
    for subscriber in started:
        subscriber.close()
    invalid = [line for subscriber in started for line in subscriber.invalid]
    assert not invalid, "messages broke the contract:\n" + "\n".join(invalid[:20])

"""What the OPC UA tests share: a publisher that records, device tables, a running driver."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from drivers.opcua import OpcuaDriver
from drivers.opcua_config import OpcuaConfig
from vocab.samples import Sample
from vocab.scans import Scan


class Recorder:
    """A ``Publisher`` that keeps every sample, in order."""

    def __init__(self) -> None:
        self.got: list[Sample] = []

    def samples(self, samples: Sequence[Sample], /) -> None:
        self.got.extend(samples)

    def scans(self, scans: Sequence[Scan], /) -> None:
        raise AssertionError("a panel sends no scans")

    def of(self, point: str) -> list[Sample]:
        return [s for s in self.got if s.point == point]

    def last(self, point: str) -> Sample | None:
        mine = self.of(point)
        return mine[-1] if mine else None

    async def wait(self, what: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not what():  # noqa: ASYNC110  (the server signals nothing we could await)
                await asyncio.sleep(0.02)


def config(endpoint: str, **table: Any) -> OpcuaConfig:
    base: dict[str, Any] = {
        "name": "panel",
        "driver": "opcua",
        "endpoint": endpoint,
        "timeout": 2.0,
        "publishing_interval": 0.05,
        "sampling_interval": 0.0,
        "reconnect_min": 0.1,
        "reconnect_max": 0.4,
        "keepalive": 0.3,
    }
    base.update(table)
    return OpcuaConfig.model_validate(base)


@contextlib.asynccontextmanager
async def running(cfg: OpcuaConfig) -> AsyncIterator[tuple[OpcuaDriver, Recorder]]:
    driver, recorder = OpcuaDriver(cfg), Recorder()
    await driver.start(recorder)
    try:
        yield driver, recorder
    finally:
        await driver.close()

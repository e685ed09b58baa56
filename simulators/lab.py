"""The simulator on a thread of its own, for demos and tests that block on other things."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType

from simulators.faults import FaultProxy
from simulators.scenario import Scenario
from simulators.warehouse import Warehouse, WarehouseServer


class SimulatorThread:
    """``with SimulatorThread(scenario, port) as sim:`` serves until the block ends.

    With ``rtu_port`` (a serial device path) the units also answer as RTU slaves there.
    """

    def __init__(
        self,
        scenario: Scenario,
        port: int,
        host: str = "127.0.0.1",
        speed: float = 1.0,
        say: Callable[[float, str], None] | None = None,
        rtu_port: str | None = None,
    ) -> None:
        self.warehouse = Warehouse(scenario, say)
        self.host = host
        self.port = port
        self.rtu_port = rtu_port
        self._speed = speed
        self._loop = asyncio.new_event_loop()
        self._server: WarehouseServer | None = None
        self._proxies: list[FaultProxy] = []
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="simulator", daemon=True
        )

    def __enter__(self) -> SimulatorThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=15)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def call(self, fn: Callable[[Warehouse], object]) -> object:
        """Run ``fn(warehouse)`` on the simulator's thread, between physics steps."""

        async def _call() -> object:
            return fn(self.warehouse)

        return asyncio.run_coroutine_threadsafe(_call(), self._loop).result(timeout=5)

    def proxy(self) -> FaultProxy:
        """A misbehaving-on-demand proxy in front of the simulator (set its ``mode``)."""

        async def start() -> FaultProxy:
            proxy = await FaultProxy(self.host, self.port).start()
            self._proxies.append(proxy)
            return proxy

        return asyncio.run_coroutine_threadsafe(start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        for proxy in self._proxies:
            asyncio.run_coroutine_threadsafe(proxy.stop(), self._loop).result(timeout=10)
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = WarehouseServer(
            self.warehouse, self.host, self.port, self._speed, rtu_port=self.rtu_port
        )
        await self._server.start()

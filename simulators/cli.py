"""``cellsafe sim``: the warehouse simulator as a program of its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from simulators.scenario import load_scenario
from simulators.warehouse import Warehouse, WarehouseServer

_logger = logging.getLogger("simulators")


def run_simulator(host: str, port: int, scenario_name: str, speed: float) -> int:
    scenario = load_scenario(scenario_name)

    def say(elapsed: float, text: str) -> None:
        _logger.info("t=%5.1f s  %s", elapsed, text)

    async def serve() -> None:
        warehouse = Warehouse(scenario, say)
        server = WarehouseServer(warehouse, host, port, speed)
        await server.start()
        _logger.info(
            "simulator %r on %s:%d (sensors unit 1, relays unit 2)", scenario.name, host, port
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0

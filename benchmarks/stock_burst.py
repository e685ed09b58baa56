"""Stock burst benchmark: how long a burst of reads holds the event loop.

    .venv/bin/python -m benchmarks.stock_burst [--reads 200]

A ``gateway.core.stock.StockService`` on a real event log (a temporary directory) takes a
put-away of ``reads`` serialised items at once, as an RFID gate or a fast scanner sends
them; each becomes a ``stock.stored`` event with its EPCIS event hash. Beside it a ticker
asks the event loop for a 10 ms sleep again and again; its worst overshoot is how long
anything else on the loop (the alarm path: polls, rules, relays) could have waited.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from gateway.config import load_settings
from gateway.core.stock import StockService
from gateway.storage.log import EventLog
from vocab.scans import Scan

ROOT = Path(__file__).resolve().parent.parent


async def burst(tmp: Path, reads: int) -> tuple[float, float]:
    """(seconds to handle the burst, worst event-loop lag in seconds)."""
    config = tmp / "gateway.toml"
    config.write_text(
        f"""
[gateway]
site = "plant-a"
id = "gw-01"
data_dir = "{tmp / "state"}"

[stock]
master_file = "{ROOT / "config" / "stock-master.toml"}"

[[devices]]
name = "gate-1"
driver = "scanner"
transport = {{ type = "tcp", host = "h", port = 1 }}
"""
    )
    settings = load_settings(config)
    with EventLog.open(tmp / "log.sqlite3", {"site": "plant-a", "gateway": "gw-01"}) as log:
        service = StockService.open(settings, {}, log, lambda _: None)
        assert service is not None
        texts = ["CMD:PUTAWAY", "C-01", *(f"(01)04012345000016(21)S{i}" for i in range(reads))]
        scans = [Scan(scanner="gate-1", data=t, symbology="barcode", ts=1.0) for t in texts]
        lags: list[float] = []
        done = False

        async def ticker() -> None:
            while not done:
                started = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - started - 0.01)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        service.scans(scans)
        await service.drain()
        took = time.perf_counter() - started
        done = True
        await task
    return took, max(lags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        took, lag = asyncio.run(burst(Path(tmp), args.reads))
    print(f"{args.reads} reads handled in {took * 1000:.0f} ms;", end=" ")
    print(f"worst event-loop lag {lag * 1000:.1f} ms")


if __name__ == "__main__":
    main()

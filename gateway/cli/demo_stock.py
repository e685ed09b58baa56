"""The demo's stock part: a put-away scan, a refused misplacement, the drums moved away.

A handheld reader is played by a pseudo-terminal behind a ``by-id``-style link
(``simulators.scanner_port``); a gateway with that reader and ``config/stock-master.toml``
runs against a private Mosquitto broker; a subscriber in the WMS's seat prints the stock
and alarm events as they arrive. It stands apart from the hot-zone story: its own broker,
its own gateway, its own temporary directory.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.app import Gateway
from gateway.cli.demo_view import EventView
from gateway.config import load_settings
from simulators.mosquitto import MosquittoBroker
from simulators.scanner_port import ScannerPort

Say = Callable[[str, str], None]
ROOT = Path(__file__).resolve().parent.parent.parent
MASTER = ROOT / "config" / "stock-master.toml"

CELLS = "(01)04012345000016(10)L202603(21)C0001"
ELECTROLYTE = "]C10104012345000023\x1d10E77\x1d3704"
# What the warehouse hand scans, and what the demo says it is.
STEPS: list[tuple[str, str]] = [
    ("CMD:PUTAWAY", "put-away label"),
    ("C-01", "location C-01 (cell store)"),
    (CELLS, "a case of Li-ion cells, class 9"),
    ("C-02", "location C-02 (cell store)"),
    (ELECTROLYTE, "4 drums of electrolyte, class 3"),
    ("CMD:MOVE", "move label"),
    ("C-02", "from C-02"),
    (ELECTROLYTE, "the electrolyte drums"),
    ("E-01", "to E-01 (electrolyte store)"),
]
EXPECTED = ["stock.stored", "stock.stored", "alarm.raised", "stock.moved", "alarm.cleared"]


def _config(workdir: Path, port: int, reader: Path) -> Path:
    path = workdir / "stock-demo.toml"
    path.write_text(
        f"""[gateway]
site = "plant-a"
id = "gw-stock"
data_dir = "{workdir / "stock-state"}"

[mqtt]
host = "127.0.0.1"
port = {port}

[stock]
master_file = "{MASTER}"

[[devices]]
name = "handheld-1"
driver = "scanner"
reject_signal = "\\u0007"
transport = {{ type = "serial", port = "{reader}" }}
"""
    )
    return path


class _StockView(EventView):
    def __init__(self, port: int, say: Say) -> None:
        super().__init__("127.0.0.1", port, "cellsafe", "demo-wms-stock")
        self._say = say

    def narrate(self, event: dict[str, Any]) -> None:
        seq = f"[seq {event['seq']}]"
        if "alarm" in event:
            label = "ALARM" if event["type"] == "alarm.raised" else "CLEARED"
            self._say(label, f"{event['alarm']['id']}: {event['alarm']['message']}  {seq}")
            return
        epcis = event.get("epcis", {})
        what = ", ".join(epcis.get("epcList", [])) or ", ".join(
            f"{q['quantity']} x {q['epcClass']}" for q in epcis.get("quantityList", [])
        )
        if "misplacement" in event:
            reasons = "; ".join(event["misplacement"]["reasons"])
            self._say("REFUSED", f"{what} into {event['location']}: {reasons}  {seq}")
        elif event["type"] == "stock.rejected":
            self._say("REJECTED", f"{event['reason']}: {event['message']}  {seq}")
        else:
            self._say(
                "STOCK",
                f"{event['type']} {what} at {event['location']}"
                f" (EPCIS {epcis.get('bizStep')}, {epcis.get('eventID', '')[:30]}...)  {seq}",
            )


def play_stock(workdir: Path, say: Say) -> bool:
    """Run the stock part; True when the WMS saw what the story expects."""
    lock = threading.Lock()  # the subscriber's thread and ours both narrate

    def narrate(topic: str, text: str) -> None:
        with lock:
            say(topic, text)

    return _play(workdir, narrate)


def _play(workdir: Path, say: Say) -> bool:
    say("demo", "stock: a handheld reader on a USB-serial adapter (a pseudo-terminal here)")
    with (
        MosquittoBroker(workdir / "broker-stock") as broker,
        ScannerPort(workdir / "usb-Honeywell_Granit-if00") as reader,
    ):
        view = _StockView(broker.port, say)
        try:
            settings = load_settings(_config(workdir, broker.port, reader.link))
            asyncio.run(_scan(settings, reader, view, say))
        finally:
            view.close()
        seen = view.types()
    ok = [t for t in seen if t in set(EXPECTED)] == EXPECTED
    say("demo", f"stock: {len(seen)} events reached the broker: {', '.join(seen) or 'none'}")
    return ok


async def _scan(settings: Any, reader: ScannerPort, view: _StockView, say: Say) -> None:
    gateway = Gateway(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    try:
        async with asyncio.timeout(20):
            # Polling on purpose: the gateway and the broker signal nothing to wait on.
            while gateway.pipeline is None and not task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the reader opens
            loop = asyncio.get_running_loop()
            for text, label in STEPS:
                say("scan", label)
                reader.send(text.encode() + b"\r")
                beep = await loop.run_in_executor(None, reader.received, 0.4)
                if beep:
                    say("reader", "BEEP-BEEP: refused (the reader's reject signal)")
            while len(view.types()) < len(EXPECTED) and not task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    except TimeoutError:
        say("demo", "stock: timed out waiting for the events")
    finally:
        stop.set()
        await task

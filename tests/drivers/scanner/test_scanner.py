"""The scanner driver over real pseudo-terminals and a real TCP stream.

A pty's master side is the reader (the test writes what a scanner would send); the driver
opens the slave side through a symlink, as it would open ``/dev/serial/by-id/...``.
Pulling the adapter closes the pty; putting it back opens a new one behind the same link,
as udev does.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from drivers.base import WriteError
from drivers.scanner import Framer, ScannerDriver
from drivers.scanner_config import ScannerConfig
from simulators.scanner_port import ScannerPort as Adapter
from tests.lab import until
from vocab.samples import Sample
from vocab.scans import Scan


def aio(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop (the project has no asyncio plugin)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


@pytest.fixture
def adapter(tmp_path: Path) -> Iterator[Adapter]:
    with Adapter(tmp_path / "usb-Datalogic_Gryphon-if00") as a:
        yield a


class Collector:
    def __init__(self) -> None:
        self.reads: list[Scan] = []
        self.states: list[Sample] = []
        self.changed = asyncio.Event()

    def samples(self, samples: Sequence[Sample], /) -> None:
        self.states += samples
        self.changed.set()

    def scans(self, scans: Sequence[Scan], /) -> None:
        self.reads += scans
        self.changed.set()

    async def until(self, check: Any) -> None:
        async with asyncio.timeout(3.0):
            while not check():
                self.changed.clear()
                await self.changed.wait()


def config(port: str, **extra: Any) -> ScannerConfig:
    return ScannerConfig.model_validate(
        {
            "name": "dock-1",
            "driver": "scanner",
            "transport": {"type": "serial", "port": port},
            "reconnect_min": 0.05,
            "reconnect_max": 0.2,
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("framing", "wire"),
    [
        ("cr", b"LOC-A1\r0100614141007349\r"),
        ("lf", b"LOC-A1\n0100614141007349\n"),
        ("crlf", b"LOC-A1\r\n0100614141007349\r\n"),
        ("stx_etx", b"noise\x02LOC-A1\x03\x020100614141007349\x03"),
    ],
)
@aio
async def test_framing_variants_over_a_pty(adapter: Adapter, framing: str, wire: bytes) -> None:
    driver = ScannerDriver(config(str(adapter.link), framing=framing))
    got = Collector()
    await driver.start(got)
    try:
        await got.until(lambda: driver.connected)
        adapter.send(wire[:5])  # a read split across writes is still one read
        await asyncio.sleep(0.02)
        adapter.send(wire[5:])
        await got.until(lambda: len(got.reads) == 2)
    finally:
        await driver.close()
    assert [s.data for s in got.reads] == ["LOC-A1", "0100614141007349"]
    assert {s.scanner for s in got.reads} == {"dock-1"}


def test_prefix_suffix_and_garbage() -> None:
    framer = Framer(config("/dev/null", prefix="#", suffix="*", max_length=16))
    assert framer.feed(b"#]C1" + b"00106141411234567897"[:10] + b"*\r") == ["]C10010614141"]
    assert framer.feed(b"x" * 40) == []  # longer than max_length: dropped, not kept
    assert framer.dropped == 1  # and said at once, not only when its end comes
    assert framer.feed(b"tail\rOK\r") == ["OK"]
    assert framer.dropped == 1
    assert framer.feed(b"\xff\xfeAB\r") == ["\ufffd\ufffdAB"]  # left for the stock logic


def test_a_reader_framed_otherwise_is_noticed() -> None:
    framer = Framer(config("/dev/null", max_length=64))  # expects CR; the reader sends LF
    for _ in range(10):
        assert framer.feed(b"(01)04012345000016(21)C0001\n") == []
    assert framer.dropped == 1


@aio
async def test_adapter_pulled_and_put_back(adapter: Adapter) -> None:
    driver = ScannerDriver(config(str(adapter.link)))
    got = Collector()
    await driver.start(got)
    try:
        await got.until(lambda: driver.connected)
        adapter.send(b"FIRST\r")
        await got.until(lambda: len(got.reads) == 1)
        adapter.pull()
        await got.until(lambda: not driver.connected)
        lost = got.states[-1]
        assert not lost.is_good and lost.point == "dock-1.connected"
        assert "lost" in (lost.reason or "")
        await asyncio.sleep(0.3)  # a few failed reopens while the link is gone
        adapter.plug()
        await got.until(lambda: driver.connected)
        adapter.send(b"SECOND\r")
        await got.until(lambda: len(got.reads) == 2)
    finally:
        await driver.close()
    assert [s.data for s in got.reads] == ["FIRST", "SECOND"]
    assert driver.connects == 2


@aio
async def test_reject_signal_reaches_the_reader(adapter: Adapter) -> None:
    driver = ScannerDriver(config(str(adapter.link), reject_signal="\u0007NG\r"))
    got = Collector()
    await driver.start(got)
    try:
        await got.until(lambda: driver.connected)
        await driver.write("signal", "reject")
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, adapter.received, 2.0) == b"\x07NG\r"
        with pytest.raises(WriteError, match="no accept_signal"):
            await driver.write("signal", "accept")
    finally:
        await driver.close()


@aio
async def test_tcp_reader_and_its_reconnect() -> None:
    connections: list[asyncio.StreamWriter] = []

    async def serve(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        writer.write(b"\x02EPC3074257BF7194E4000001A85\x03")
        await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    driver = ScannerDriver(
        ScannerConfig.model_validate(
            {
                "name": "gate-rfid",
                "driver": "scanner",
                "transport": {"type": "tcp", "host": "127.0.0.1", "port": port},
                "symbology": "rfid",
                "framing": "stx_etx",
                "prefix": "EPC",
                "reconnect_min": 0.05,
            }
        )
    )
    got = Collector()
    try:
        await driver.start(got)
        await got.until(lambda: len(got.reads) == 1)
        connections[0].close()  # the reader drops the stream
        await got.until(lambda: len(got.reads) == 2)
    finally:
        await driver.close()
        server.close()
        await server.wait_closed()
    assert [(s.data, s.symbology) for s in got.reads] == [("3074257BF7194E4000001A85", "rfid")] * 2


@aio
async def test_a_stream_that_closes_at_once_is_away_not_flapping() -> None:
    """A serial-to-Ethernet converter whose one port is taken accepts and closes at once:
    the reader stays away (so its comm alarm can rise), it does not flap connected."""
    accepted: list[int] = []

    async def refuse(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = {"type": "tcp", "host": "127.0.0.1", "port": port}
    driver = ScannerDriver(config("/dev/null", transport=transport))
    got = Collector()
    try:
        await driver.start(got)
        async with asyncio.timeout(3):
            await until(lambda: len(accepted) >= 3)
    finally:
        await driver.close()
        server.close()
        await server.wait_closed()
    assert [(s.is_good, s.reason) for s in got.states] == [
        (False, "closes at once: closed by the reader")
    ]

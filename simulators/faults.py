"""A Modbus TCP man-in-the-middle that misbehaves on demand, as field devices do.

Placed between the gateway and a simulator, it passes frames through or, by ``mode``:
``garble`` corrupts the reply, ``short`` returns fewer registers than asked (a well-formed
but wrong frame), ``exception`` answers with exception 4 (device failure) and ``silent``
swallows the reply so the client times out. With ``every = N`` only every Nth request
(counted over all connections) suffers the fault and the others pass, as on a link that
fails one reply in N; ``close_after_reply`` closes the connection after each reply, as
some TCP-to-serial converters do.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Literal

FaultMode = Literal["pass", "garble", "short", "exception", "silent"]
_MBAP = 7


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0
        self.mode: FaultMode = "pass"
        self.every = 1
        self.close_after_reply = False
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            while True:
                request = await _read_frame(reader)
                self.requests += 1
                mode = self.mode if self.requests % self.every == 0 else "pass"
                if mode == "exception":
                    writer.write(_exception_reply(request, code=4))
                    await writer.drain()
                    continue
                up_writer.write(request)
                await up_writer.drain()
                reply = await _read_frame(up_reader)
                if mode == "silent":
                    continue
                if mode == "garble":
                    reply = reply[:_MBAP] + bytes(b ^ 0x5A for b in reply[_MBAP:])
                elif mode == "short":
                    reply = _shorten(reply)
                writer.write(reply)
                await writer.drain()
                if self.close_after_reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._handlers.discard(task)
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                    await w.wait_closed()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(_MBAP)
    length = int.from_bytes(header[4:6], "big")
    return header + await reader.readexactly(length - 1)


def _exception_reply(request: bytes, code: int) -> bytes:
    function = request[_MBAP] | 0x80
    return request[:4] + (3).to_bytes(2, "big") + request[6:7] + bytes([function, code])


def _shorten(reply: bytes) -> bytes:
    """Drop the last register of a register read reply, fixing the lengths to match."""
    function, count = reply[_MBAP], reply[_MBAP + 1]
    if function not in (3, 4) or count < 4:
        return reply
    pdu = bytes([function, count - 2]) + reply[_MBAP + 2 : _MBAP + 2 + count - 2]
    return reply[:4] + (len(pdu) + 1).to_bytes(2, "big") + reply[6:7] + pdu


@contextlib.contextmanager
def proxy_in_thread(
    upstream_port: int, mode: FaultMode, every: int = 1, upstream_host: str = "127.0.0.1"
) -> Iterator[FaultProxy]:
    """A ``FaultProxy`` on a loop of its own, for callers without one (benchmarks)."""
    loop = asyncio.new_event_loop()
    proxy = FaultProxy(upstream_host, upstream_port)
    proxy.mode, proxy.every = mode, every
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(proxy.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield proxy
    finally:
        asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

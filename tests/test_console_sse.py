"""The console's live stream is bounded: a page too slow to take its messages lets them
go at once, and one page more than the hub's limit is refused rather than served."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from gateway.console.sse import QUEUE, Hub
from tests.lab import http_app


def test_a_page_cut_off_for_being_slow_holds_no_messages() -> None:
    hub = Hub()
    slow: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE)
    hub._queues.add(slow)  # a page whose connection hangs: it takes nothing
    for n in range(QUEUE + 1):
        hub.publish("state", {"n": n, "pad": "x" * 1000})
    assert len(hub) == 0
    assert slow.qsize() == 1 and slow.get_nowait() is None  # only the end marker


def test_one_page_more_than_the_limit_is_refused() -> None:
    hub = Hub(limit=2)

    async def stream(request: web.Request) -> web.StreamResponse:
        return await hub.stream(request, [b"event: state\ndata: {}\n\n"], lambda: True)

    async def run() -> tuple[list[int], int, int]:
        app = web.Application()
        app.router.add_get("/stream", stream)
        async with http_app(app) as port:
            url = f"http://127.0.0.1:{port}/stream"
            try:
                async with aiohttp.ClientSession() as client:
                    pages = [await client.get(url) for _ in range(2)]
                    for page in pages:
                        await page.content.readuntil(b"\n\n")  # served
                    async with client.get(url) as third:
                        refused = third.status
                    pages[0].close()
                    await asyncio.sleep(0.1)  # the server sees the page go
                    hub.publish("state", {})  # its next write finds the connection gone
                    await asyncio.sleep(0.1)
                    async with client.get(url) as again:
                        later = again.status
                    for page in pages:
                        page.close()
                return [p.status for p in pages], refused, later
            finally:
                hub.close()

    served, refused, later = asyncio.run(run())
    assert served == [200, 200]
    assert refused == 503
    assert later == 200  # a page gone makes room

"""Server-sent events (the WHATWG HTML "server-sent events" format) to every open page.

``Hub.publish(kind, data)`` puts one message on each subscriber's bounded queue. The
overflow policy is ``drop-client``: a browser too slow to take ``QUEUE`` messages is cut
off rather than buffered without bound; its ``EventSource`` reconnects by itself and gets
a fresh snapshot first, so it misses nothing of the state; the messages it had not taken
are let go at once, even while its connection still hangs. At most ``STREAMS`` pages are
served at a time (the console is for a handful of screens in the warehouse); one more is
answered 503 and the page tries again a few seconds later. A comment line every ``HEARTBEAT``
seconds keeps proxies from closing an idle stream and lets the server notice a session
that expired meanwhile.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

QUEUE = 256
HEARTBEAT = 10.0
STREAMS = 64  # pages served live at a time

Message = tuple[str, str]  # (event name, JSON data)


def frame(kind: str, data: Any) -> bytes:
    """One SSE message: ``event: kind`` and the JSON on one ``data:`` line."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return f"event: {kind}\ndata: {body}\n\n".encode()


class Hub:
    def __init__(self, limit: int = STREAMS) -> None:
        self.limit = limit
        self._queues: set[asyncio.Queue[bytes | None]] = set()

    def __len__(self) -> int:
        return len(self._queues)

    def publish(self, kind: str, data: Any) -> None:
        if not self._queues:
            return
        message = frame(kind, data)
        for queue in list(self._queues):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                self._drop(queue)

    def _drop(self, queue: asyncio.Queue[bytes | None]) -> None:
        self._queues.discard(queue)
        while not queue.empty():
            queue.get_nowait()  # nothing more for this page: let its messages go
        queue.put_nowait(None)

    def close(self) -> None:
        for queue in list(self._queues):
            self._drop(queue)

    async def stream(
        self,
        request: web.Request,
        first: list[bytes],
        alive: Callable[[], bool],
        heartbeat: float = HEARTBEAT,
    ) -> web.StreamResponse:
        """Serve one browser: ``first`` (the snapshot), then every message published, until
        the browser goes, ``alive()`` turns false (its session ended) or the hub closes.
        Raises ``HTTPServiceUnavailable`` while ``limit`` pages are served already."""
        if len(self._queues) >= self.limit:
            raise web.HTTPServiceUnavailable(
                text=json.dumps({"ok": False, "error": f"{self.limit} live pages already"}),
                content_type="application/json",
                headers={"Retry-After": "10"},
            )
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE)
        self._queues.add(queue)  # counted from here, before the first await
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        try:
            await response.prepare(request)
            await response.write(b"retry: 2000\n\n" + b"".join(first))
            while alive():
                try:
                    message = await asyncio.wait_for(queue.get(), heartbeat)
                except TimeoutError:
                    message = b": heartbeat\n\n"
                if message is None:
                    break
                await response.write(message)
        except ConnectionResetError:
            pass  # the browser went away
        finally:
            self._queues.discard(queue)
        return response

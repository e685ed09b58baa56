"""A lock with two queues: urgent waiters take their turn before the others.

name: turn_lock
library: asyncio only

A Modbus line carries one exchange at a time; ``asyncio.Lock`` serves waiters in arrival
order, so a safety poll could wait behind a queue of long bulk reads. ``TurnLock`` serves
every urgent waiter first, each queue in arrival order, and is otherwise a plain lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class TurnLock:
    """Whose turn it is on the line: one holder at a time, first come first served, except
    that a waiter with ``urgent=True`` goes before every waiter without it. An urgent
    poll thus waits for at most the exchange in progress, never for a queue of others.

    ``async with lock.turn(urgent):`` takes a turn; ``async with lock:`` a normal one.
    """

    def __init__(self) -> None:
        self._held = False
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),
            deque(),
        )

    @contextlib.asynccontextmanager
    async def turn(self, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def __aenter__(self) -> None:
        await self._acquire(False)

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def locked(self) -> bool:
        return self._held

    async def _acquire(self, urgent: bool) -> None:
        if not self._held and not any(self._waiting):
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiting[0 if urgent else 1]
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed the turn just as we were cancelled: pass it on
            elif waiter in queue:  # a release may already have dropped it from the queue
                queue.remove(waiter)
            raise

    def _release(self) -> None:
        for queue in self._waiting:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the turn passes on; _held stays True
                    return
        self._held = False

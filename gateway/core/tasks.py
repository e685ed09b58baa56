"""Cancelling tasks so that they stay cancelled.

On Python 3.11, ``asyncio.wait_for`` swallows a cancellation that arrives in the same turn
of the loop as the result it waits for (python/cpython#86296, fixed by the 3.12 rewrite).
pymodbus awaits every reply that way, so a poller cancelled just as a reply lands carries
on polling, and a stop that cancels once and waits never ends. ``cancel_all`` cancels
again until every task has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

_RECANCEL_AFTER = 0.1


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> list[BaseException | None]:
    """Cancel ``tasks`` and wait for all of them; each one's exception, if it raised one."""
    tasks = list(tasks)
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_RECANCEL_AFTER)
    return [None if t.cancelled() else t.exception() for t in tasks]

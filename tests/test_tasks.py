from __future__ import annotations

import asyncio

from gateway.core.tasks import cancel_all


async def _poll_forever(waiting: list[asyncio.Future[None]]) -> None:
    # What a pymodbus read does: wait for the reply with a timeout, again and again.
    loop = asyncio.get_running_loop()
    while True:
        reply: asyncio.Future[None] = loop.create_future()
        waiting.append(reply)
        await asyncio.wait_for(reply, 5)


def test_a_task_whose_reply_lands_as_it_is_cancelled_still_ends() -> None:
    async def scenario() -> bool:
        waiting: list[asyncio.Future[None]] = []
        task = asyncio.create_task(_poll_forever(waiting))
        await asyncio.sleep(0)
        waiting[-1].set_result(None)  # the reply lands in the same turn as the cancel
        errors = await asyncio.wait_for(cancel_all([task]), 5)
        return task.cancelled() and errors == [None]

    assert asyncio.run(scenario())


def test_errors_of_tasks_that_failed_are_returned() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    async def scenario() -> list[str]:
        task = asyncio.create_task(fail())
        await asyncio.sleep(0)
        return [repr(e) for e in await cancel_all([task])]

    assert asyncio.run(scenario()) == ["ValueError('boom')"]

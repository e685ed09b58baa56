"""Delivery: one task and one bounded queue per channel, apprise underneath, retries.

``Dispatcher.submit`` never waits: a message joins its channel's queue (``queue`` long; when
full, the policy ``drop_oldest`` gives up the oldest message waiting, recorded as failed). Each
channel's task sends its messages in order; a failed attempt is tried again after a
back-off that doubles from ``retry_min`` to ``retry_max`` seconds, until ``give_up_after``
seconds have passed since the message was queued, when it is given up. Every message
sent or given up is reported to ``on_result``.

A channel failing for ``fault_after`` seconds (its oldest unsent message that old) is a
fault: ``on_fault`` hears the reason, and ``None`` once every channel sends again. The
gateway turns that into ``gateway.notify.fault`` (``NOTIFY_ALARM``). Durations are on the
steady clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

from gateway.core.tasks import cancel_all
from gateway.notify.mask import LOGGER
from vocab.clock import steady

_logger = logging.getLogger(LOGGER)

Sender = Callable[[str, str, str, float], Awaitable[str | None]]
"""``(url, title, body, timeout)`` -> ``None`` when sent, else why not (no secret in it)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One text to one channel. ``key`` names what it tells (``raised:<alarm id>``)."""

    channel: str
    people: tuple[str, ...]
    language: str
    key: str
    title: str
    body: str
    queued: float = field(default_factory=steady)


@dataclass(frozen=True, slots=True)
class Result:
    message: Message
    outcome: Literal["sent", "failed"]
    attempts: int
    error: str = ""


async def apprise_sender(url: str, title: str, body: str, within: float) -> str | None:
    """Sends through apprise (its plugin for the URL's scheme)."""
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        return "apprise does not accept the channel's URL"
    try:
        result = await asyncio.wait_for(
            notifier.async_notify(body=body, title=title), timeout=within
        )
    except TimeoutError:
        return f"no answer within {within:g} s"
    if bool(result):
        return None
    return f"not delivered ({getattr(result.status, 'name', result.status)})"


class Dispatcher:
    def __init__(
        self,
        urls: Mapping[str, str],
        on_result: Callable[[Result], None],
        on_fault: Callable[[str | None], None],
        *,
        queue: int = 200,
        retry_min: float = 1.0,
        retry_max: float = 60.0,
        give_up_after: float = 3600.0,
        fault_after: float = 300.0,
        timeout: float = 10.0,
        sender: Sender = apprise_sender,
    ) -> None:
        self._urls = dict(urls)
        self._on_result = on_result
        self._on_fault = on_fault
        self._limit = queue
        self.retry_min, self.retry_max = retry_min, retry_max
        self.give_up_after, self.fault_after, self.timeout = give_up_after, fault_after, timeout
        self._send = sender
        self._queues: dict[str, deque[Message]] = {name: deque() for name in self._urls}
        self._wake: dict[str, asyncio.Event] = {name: asyncio.Event() for name in self._urls}
        self._failing: dict[str, tuple[float, str]] = {}  # channel -> (since, why)
        self._fault: str | None = None
        self._busy: dict[str, Message] = {}  # the message each channel is trying to send
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def fault(self) -> str | None:
        return self._fault

    def submit(self, message: Message) -> None:
        """Queues ``message`` without waiting; a full queue drops its oldest message."""
        queue = self._queues[message.channel]
        if len(queue) >= self._limit:
            # the oldest waiting one: the message in flight finishes its attempt first
            index = 1 if len(queue) > 1 and self._busy.get(message.channel) is queue[0] else 0
            oldest = queue[index]
            del queue[index]
            self._report(Result(oldest, "failed", 0, "queue full (drop_oldest)"))
        queue.append(message)
        self._wake[message.channel].set()

    async def __aenter__(self) -> Dispatcher:
        self._tasks = [
            asyncio.create_task(self._run(name), name=f"notify-{name}") for name in self._urls
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await cancel_all(self._tasks)
        for name, queue in self._queues.items():
            if queue:
                _logger.warning(
                    "notify: %d message(s) for channel %s not sent at shutdown", len(queue), name
                )

    async def _run(self, channel: str) -> None:
        queue, wake = self._queues[channel], self._wake[channel]
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            message = self._busy[channel] = queue[0]
            attempts, delay = 0, self.retry_min
            while True:
                attempts += 1
                error = await self._attempt(message)
                if error is None:
                    if queue and queue[0] is message:
                        queue.popleft()
                    self._healthy(channel)
                    self._report(Result(message, "sent", attempts))
                    break
                self._failed(channel, error)
                if queue and queue[0] is not message:
                    break  # dropped by the overflow policy meanwhile
                if steady() - message.queued >= self.give_up_after:
                    queue.popleft()
                    self._report(Result(message, "failed", attempts, error))
                    break
                if attempts == 1:
                    _logger.warning(
                        "notify: %s to %s via %s failed (%s); retrying",
                        message.key,
                        ",".join(message.people),
                        channel,
                        error,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                if not queue or queue[0] is not message:
                    break

    async def _attempt(self, message: Message) -> str | None:
        try:
            return await self._send(
                self._urls[message.channel], message.title, message.body, self.timeout
            )
        except Exception as err:  # a sender's failure must never end the channel's loop
            return f"{type(err).__name__}: {err}"

    def _failed(self, channel: str, error: str) -> None:
        now = steady()
        since, _ = self._failing.get(channel, (now, error))
        self._failing[channel] = (since, error)
        oldest = self._queues[channel][0].queued if self._queues[channel] else since
        if self._fault is None and now - min(since, oldest) >= self.fault_after:
            self._fault = f"notify channel {channel} failing for {now - since:.0f} s: {error}"
            _logger.error("notify: %s", self._fault)
            self._on_fault(self._fault)

    def _healthy(self, channel: str) -> None:
        if self._failing.pop(channel, None) is not None:
            _logger.info("notify: channel %s sends again", channel)
        if self._fault is not None and not self._failing:
            self._fault = None
            self._on_fault(None)

    def _report(self, result: Result) -> None:
        try:
            self._on_result(result)
        except Exception:  # recording must not end a channel's loop
            _logger.exception("notify: recording the result of %s failed", result.message.key)

"""The notifier: a sink of the event log that tells people of alarms.

It reads alarm, actuator and safety events on its own cursor (``notify``), so the alarm
path never waits for it: a slow SMTP server or a dead webhook only leaves messages in its
queues. ``Planner`` decides, ``render`` words each notice in each recipient's language,
``Dispatcher`` sends one message per channel and language (a DingTalk group shared by
three people gets one message). Every message sent or given up is a log line and, with
``record`` given, a ``notify.sent`` / ``notify.failed`` event (who, which channel, what:
never the URL nor a secret).

A restart or a reload forgets escalations that were pending and messages still queued
(each is a log line at shutdown); alarms told before it are not told again (the cursor
moved past them). Events older than ``max_age`` seconds when read (the
backlog of a long outage, or of a notifier added to a running site) are not told: their
age is the steady clock, which reads like Unix time, less the event's stamp.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config.notify import Language, NotifySection
from gateway.core.tasks import cancel_all
from gateway.notify import mask
from gateway.notify.plan import Notice, Planner, parse_ts
from gateway.notify.rota import on_shift
from gateway.notify.send import Dispatcher, Message, Result, Sender, apprise_sender
from gateway.notify.text import render
from gateway.sinks.base import BatchSink
from gateway.storage.log import EVENTS, EventLog, StoredRecord
from rules.alarms import AlarmDefinition, ConditionChange
from vocab.clock import steady
from vocab.events import Event
from vocab.ids import gateway_alarm_id

_logger = logging.getLogger(mask.LOGGER)

SINK = "notify"
TICK = 0.25  # seconds between looks at the clock (raise windows, escalations)
_WANTED = ("alarm", "actuator", "safety")

NOTIFY_ALARM = AlarmDefinition(
    id=gateway_alarm_id("notify", "fault"), priority="high", level="fault"
)


def notify_condition(reason: str | None) -> ConditionChange:
    """The ``gateway.notify.fault`` condition for what the dispatcher reports."""
    return ConditionChange(
        alarm_id=NOTIFY_ALARM.id,
        active=reason is not None,
        ts=steady(),
        message=reason or "notifications are sent again",
    )


class NotifySink(BatchSink):
    name = SINK
    batch = 200

    def __init__(
        self,
        config: NotifySection,
        log: EventLog,
        site: str,
        conditions: Callable[[ConditionChange], None],
        *,
        record: Callable[[list[Event]], object] | None = None,
        sender: Sender = apprise_sender,
    ) -> None:
        super().__init__(log.cursor(SINK, EVENTS))
        self.config = config
        self.site = site
        self._zone = ZoneInfo(config.timezone)
        self._conditions = conditions
        self._record = record
        self.planner = Planner(
            config.routes,
            lambda ts: on_shift(config.shifts, ts, self._zone),
            action_window=config.action_window,
            flood_count=config.flood_count,
            flood_window=config.flood_window,
        )
        self.dispatcher = Dispatcher(
            config.channel_urls(),
            self._result,
            self._fault,
            queue=config.queue,
            retry_min=config.retry_min,
            retry_max=config.retry_max,
            give_up_after=config.give_up_after,
            fault_after=config.fault_after,
            timeout=config.timeout,
            sender=sender,
        )
        self._masking = mask.install(config.secret_values())
        self._ticker: asyncio.Task[None] | None = None
        self.counters = {"sent": 0, "failed": 0}

    async def __aenter__(self) -> NotifySink:
        await self.dispatcher.__aenter__()
        await super().__aenter__()
        self._ticker = asyncio.create_task(self._tick(), name="notify-clock")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ticker is not None:
            await cancel_all([self._ticker])
        await super().__aexit__(exc_type, exc, tb)
        await self.dispatcher.__aexit__(exc_type, exc, tb)
        mask.remove(self._masking)

    async def deliver(self, records: Sequence[StoredRecord]) -> None:
        now, stale = steady(), 0
        for record in records:
            if record.category not in _WANTED:
                continue
            try:
                event: dict[str, Any] = json.loads(record.record)
            except ValueError:
                continue
            ts = parse_ts(event.get("ts"))
            if ts is not None and now - ts > self.config.max_age:
                stale += 1
                continue
            self.dispatch(self.planner.on_event(event, now))
        if stale:
            _logger.info(
                "notify: %d event(s) older than %g s not told (a backlog)",
                stale,
                self.config.max_age,
            )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            self.dispatch(self.planner.tick(steady()))

    def dispatch(self, notices: Sequence[Notice]) -> None:
        """Words each notice per language and queues one message per channel."""
        for notice in notices:
            groups: dict[tuple[str, Language], list[str]] = {}
            for person in notice.people:
                config = self.config.people.get(person)
                if config is None:
                    continue
                for channel in config.channels:
                    groups.setdefault((channel, config.language), []).append(person)
            for (channel, language), people in groups.items():
                title, body = render(notice, language, self.site, self._zone)
                self.dispatcher.submit(
                    Message(channel, tuple(people), language, notice.key, title, body)
                )

    def _result(self, result: Result) -> None:
        message = result.message
        self.counters[result.outcome] += 1
        if result.outcome == "sent":
            _logger.info(
                "notify: sent %s to %s via %s (%s, %d attempt(s))",
                message.key,
                ",".join(message.people),
                message.channel,
                message.language,
                result.attempts,
            )
        else:
            _logger.warning(
                "notify: gave up %s to %s via %s after %d attempt(s): %s",
                message.key,
                ",".join(message.people),
                message.channel,
                result.attempts,
                result.error,
            )
        if self._record is not None:
            body: dict[str, Any] = {
                "key": message.key,
                "channel": message.channel,
                "people": list(message.people),
                "language": message.language,
                "attempts": result.attempts,
            }
            if result.error:
                body["error"] = mask.mask(result.error, self._masking.secrets)
            self._record([Event(f"notify.{result.outcome}", {"notify": body})])

    def _fault(self, reason: str | None) -> None:
        """The reason goes into an alarm event: masked like a log line."""
        masked = None if reason is None else mask.mask(reason, self._masking.secrets)
        self._conditions(notify_condition(masked))

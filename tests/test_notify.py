# ruff: noqa: RUF001  (Chinese text takes full-width punctuation)
"""Notifications end to end: events in a real log, apprise to a real SMTP server (aiosmtpd)
and a real HTTP receiver (aiohttp) on free loopback ports; a receiver that is down and
comes back."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.config.notify import NotifySection
from gateway.config.settings import GatewaySettings
from gateway.notify.send import Dispatcher, Message, Result, apprise_sender
from gateway.notify.sink import NOTIFY_ALARM, NotifySink
from gateway.storage.log import EventLog, iso_utc
from gateway.uplink.topics import Topics
from rules.alarms import ConditionChange
from simulators.net import free_port
from tests import contract
from tests.lab import ROOT, http_app
from vocab.events import Event

TOKEN = "hookT0ken-5ecret-77"
ALARM = "electrolyte-store.temperature.high"
TOPICS = Topics("cellsafe", "plant-a", "gw-01")


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))
        return "250 OK"


class Receiver:
    """An HTTP webhook on a fixed free port that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.times: list[float] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook/{token}", self._hook)
        self._runner = web.AppRunner(app, access_log=None)  # the far end logs its own path
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _hook(self, request: web.Request) -> web.Response:
        self.posts.append((request.match_info["token"], await request.json()))
        self.times.append(time.monotonic())
        return web.Response(text="ok")


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def section(smtp_port: int, http_port: int, monkeypatch: pytest.MonkeyPatch) -> NotifySection:
    mail = f"mailto://127.0.0.1:{smtp_port}?from=gw@example.com&to=li@example.com&mode=insecure"
    monkeypatch.setenv("CELLSAFE_NOTIFY__SECRETS__HOOK", TOKEN)
    monkeypatch.setenv("CELLSAFE_NOTIFY__SECRETS__MAIL", mail)
    data = {
        "channels": {
            "mail": {"secret": "mail"},
            "hook": {"secret": "hook", "url": f"json://127.0.0.1:{http_port}/hook/{{secret}}"},
        },
        "people": {
            "li-wei": {"language": "zh", "channels": ["mail"]},
            "anna": {"language": "en", "channels": ["hook"]},
        },
        "shifts": {
            "all": {
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "start": "00:00",
                "end": "00:00",
                "people": ["li-wei", "anna"],
            }
        },
        "routes": [{"priorities": ["high"], "escalate_after": 1.0}],
        "action_window": 0.3,
        "retry_min": 0.1,
        "retry_max": 0.2,
        "fault_after": 0.6,
    }
    settings = GatewaySettings.model_validate(
        {"gateway": {"site": "plant-a", "id": "gw-01"}, "notify": data}
    )
    return settings.notify


def alarm_events() -> list[Event]:
    body = {
        "id": ALARM,
        "state": "unack",
        "priority": "high",
        "zone": "electrolyte-store",
        "value": 31.5,
        "limit": 30.0,
        "unit": "degC",
    }
    fan = {"name": "exhaust-fan-1", "state": "on", "verified": True, "causes": [ALARM]}
    return [Event("alarm.raised", {"alarm": body}), Event("actuator.switched", {"actuator": fan})]


async def until(check: Any, within: float = 5.0) -> None:
    for _ in range(int(within / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time")


def test_raise_and_escalation_reach_mail_in_chinese_and_webhook_in_english(
    tmp_path: Path,
    mailbox: tuple[Mailbox, int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = Receiver()
    try:
        asyncio.run(_escalation(tmp_path, mailbox, receiver, monkeypatch, caplog))
    finally:
        asyncio.run(receiver.stop()) if receiver.running else None


async def _escalation(
    tmp_path: Path,
    mailbox: tuple[Mailbox, int],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    box, smtp_port = mailbox
    await receiver.start()
    config = section(smtp_port, receiver.port, monkeypatch)
    changes: list[ConditionChange] = []
    caplog.set_level(logging.DEBUG)
    with EventLog.open(tmp_path / "log.sqlite3", {"site": "plant-a", "gateway": "gw-01"}) as log:
        recorded: list[Event] = []
        sink = NotifySink(config, log, "plant-a", changes.append, record=recorded.extend)
        async with sink:
            old = alarm_events()[0]
            old_body = {"alarm": {**old.body["alarm"], "id": "cell-store.smoke.high"}}
            log.emit([Event("alarm.raised", old_body, ts=time.time() - 3600)])  # a backlog
            log.emit(alarm_events())
            emitted = time.monotonic()
            await until(lambda: box.messages)  # the raise: the first on shift, by mail
            mail = box.messages[0]
            text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert "报警" in str(mail["subject"]) and "electrolyte-store" in str(mail["subject"])
            assert "数值：31.5 degC" in text and "限值：30 degC" in text
            assert "exhaust-fan-1 已开启" in text
            await until(lambda: receiver.posts)  # still unacknowledged: the next person
            assert receiver.times[0] - emitted >= 1.0  # not before escalate_after
            token, post = receiver.posts[0]
            assert token == TOKEN
            assert post["title"].startswith("[plant-a] ALARM ESCALATED (step 1")
            assert "Value: 31.5 degC" in post["message"] and "Limit: 30 degC" in post["message"]
            assert "exhaust-fan-1 switched on" in post["message"]
            await until(lambda: sink.counters["sent"] == 2)
        await receiver.stop()
    assert [r.type for r in recorded] == ["notify.sent", "notify.sent"]
    assert sorted((r.body["notify"]["key"], r.body["notify"]["channel"]) for r in recorded) == [
        (f"escalated:{ALARM}", "hook"),  # each channel has its own task: any order
        (f"raised:{ALARM}", "mail"),
    ]
    assert changes == []
    assert len(box.messages) == 1  # the hour-old raise was not told
    for number, event in enumerate(recorded, 1):
        assert TOKEN not in json.dumps(event.body) and "mailto" not in json.dumps(event.body)
        wire = {
            "event_id": str(uuid.uuid4()),
            "seq": number,
            "type": event.type,
            "ts": iso_utc(event.ts),
            "site": "plant-a",
            "gateway": "gw-01",
            **event.body,
        }
        assert contract.problems(TOPICS.event("notify"), wire) == []
    assert "notify: sent raised:" in caplog.text
    assert TOKEN not in caplog.text and f"127.0.0.1:{smtp_port}?from" not in caplog.text


def test_a_receiver_down_raises_the_fault_alarm_and_clears_it_when_back(
    tmp_path: Path,
    mailbox: tuple[Mailbox, int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    asyncio.run(_down_and_back(tmp_path, mailbox, Receiver(), monkeypatch, caplog))


async def _down_and_back(
    tmp_path: Path,
    mailbox: tuple[Mailbox, int],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, smtp_port = mailbox
    data = section(smtp_port, receiver.port, monkeypatch).model_dump()
    data["people"]["li-wei"]["channels"] = ["hook"]  # everything through the webhook
    data["secrets"] = {k: v.get_secret_value() for k, v in data.pop("secrets").items()}
    config = NotifySection.model_validate(data)
    changes: list[ConditionChange] = []
    caplog.set_level(logging.DEBUG)
    with EventLog.open(tmp_path / "log.sqlite3", {"site": "plant-a", "gateway": "gw-01"}) as log:
        async with NotifySink(config, log, "plant-a", changes.append) as sink:
            log.emit(alarm_events())
            await until(lambda: changes)  # down for fault_after: the alarm
            assert changes[0].alarm_id == NOTIFY_ALARM.id == "gateway.notify.fault"
            assert changes[0].active and "hook" in changes[0].message
            assert TOKEN not in changes[0].message
            assert receiver.posts == []
            await receiver.start()
            await until(lambda: len(changes) == 2)  # sent on a retry: cleared
            assert not changes[1].active
            assert receiver.posts[0][1]["title"].startswith("[plant-a] 报警 electrolyte-store")
            assert sink.dispatcher.fault is None
        await receiver.stop()
    assert "failed" in caplog.text and "retrying" in caplog.text
    assert TOKEN not in caplog.text


def test_a_full_queue_drops_its_oldest_waiting_message_and_gives_up_in_time() -> None:
    results: list[Result] = []
    faults: list[str | None] = []

    async def scenario() -> None:
        url = f"json://127.0.0.1:{free_port()}/hook/{TOKEN}"  # nobody listens there
        dispatcher = Dispatcher(
            {"hook": url},
            results.append,
            faults.append,
            queue=2,
            retry_min=0.05,
            retry_max=0.1,
            give_up_after=0.4,
            fault_after=10.0,
        )
        async with dispatcher:
            for n in range(4):
                dispatcher.submit(Message("hook", ("anna",), "en", f"m{n}", "t", "b"))
                await asyncio.sleep(0.02)
            await until(lambda: len(results) == 4)

    asyncio.run(scenario())
    assert [(r.message.key, r.outcome, r.attempts > 0) for r in results[:2]] == [
        ("m1", "failed", False),
        ("m2", "failed", False),
    ]
    assert [r.message.key for r in results[2:]] == ["m0", "m3"]
    assert results[2].attempts > 1  # retried until give_up_after since it was queued
    assert all(r.outcome == "failed" and r.attempts >= 1 for r in results[2:])
    assert "queue full (drop_oldest)" in results[0].error
    assert faults == []  # failing for less than fault_after


def test_the_sample_sms_channel_reaches_the_gateway_with_its_token_and_number() -> None:
    sample = tomllib.loads((ROOT / "config" / "notify.toml").read_text())
    template = sample["notify"]["channels"]["li-wei-sms"]["url"]
    queries: list[dict[str, str]] = []

    async def gateway(request: web.Request) -> web.Response:
        queries.append(dict(request.query))
        return web.Response(text="ok")

    async def run() -> str | None:
        app = web.Application()
        app.router.add_post("/send", gateway)
        async with http_app(app, access_log=False) as port:
            url = template.replace("jsons://sms.example.com", f"json://127.0.0.1:{port}")
            return await apprise_sender(url.replace("{secret}", TOKEN), "title", "body", 10.0)

    assert asyncio.run(run()) is None
    assert queries == [{"token": TOKEN, "to": "+8613800000000"}]

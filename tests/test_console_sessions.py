"""Console sessions on an explicit steady clock: a live page keeps a session for viewing
up to its lifetime, an action needs interaction within ``idle_timeout`` (or the password
again), and no account pushes other accounts' sessions out of the cap."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web

from gateway.config.settings import GatewaySettings
from gateway.console import routes
from gateway.console.app import make_app
from gateway.console.auth import User, Users, hash_password
from gateway.console.history import EventHistory
from gateway.console.routes import Api
from gateway.console.sessions import Sessions
from gateway.console.sse import Hub
from gateway.console.trends import Trends
from gateway.console.view import View
from gateway.core.commands import CommandRouter
from gateway.core.pipeline import Pipeline
from gateway.core.status import GatewayStatus
from gateway.storage.log import EventLog
from rules.alarms import AlarmManager
from rules.engine import RuleEngine
from rules.matrix import CauseEffectMatrix
from rules.thresholds import LimitSpec, ThresholdSpec
from simulators.net import free_port
from vocab.samples import Sample

IDLE, LIFETIME = 60.0, 600.0
POINT = "store-probe.temperature"
ALARM = "store.temperature.high_high"


class Clock:
    """A steady clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def user(name: str, role: str = "operator") -> User:
    return User(name, role, "", "$argon2id$not-used")  # type: ignore[arg-type]


# -- the session rules, no server --------------------------------------------------------


def test_an_open_page_keeps_viewing_until_the_lifetime_but_not_acting() -> None:
    clock = Clock()
    sessions = Sessions(IDLE, LIFETIME, clock=clock)
    wall = sessions.start(user("olga"))
    tablet = sessions.start(user("vera"))
    for _ in range(11):  # a stream heartbeat (a touch) every 50 s, no user interaction
        clock.now += 50.0
        assert sessions.get(wall.token) is wall
    assert sessions.get(tablet.token) is None  # no page open: ended after IDLE
    assert clock.now - wall.started == 550.0
    assert not sessions.may_act(wall) and sessions.act_for(wall) == 0.0
    assert not sessions.interacted(wall)  # a touch does not reopen a lapsed window
    assert not sessions.may_act(wall)
    sessions.confirm(wall)  # the password again
    assert sessions.may_act(wall) and sessions.act_for(wall) == 50.0  # the lifetime is near
    clock.now += 51.0
    assert sessions.get(wall.token) is None  # past the lifetime, open page or not
    assert not sessions.may_act(wall)


def test_interaction_within_the_window_keeps_it_open() -> None:
    clock = Clock()
    sessions = Sessions(IDLE, LIFETIME, clock=clock)
    session = sessions.start(user("olga"))
    assert sessions.may_act(session) and sessions.act_for(session) == IDLE
    for _ in range(5):
        clock.now += IDLE - 1.0
        assert sessions.interacted(session)
    clock.now += IDLE
    assert sessions.may_act(session)  # exactly IDLE since the last interaction
    clock.now += 0.5
    assert not sessions.may_act(session) and not sessions.interacted(session)


def test_one_account_signing_in_again_and_again_ends_only_its_own_sessions() -> None:
    clock = Clock()
    sessions = Sessions(IDLE, LIFETIME, cap=6, per_account=3, clock=clock)
    olga = sessions.start(user("olga"))
    clock.now += 1.0
    vera = sessions.start(user("vera", "viewer"))
    mallory: list[Any] = []
    for _ in range(300):
        clock.now += 0.01
        mallory.append(sessions.start(user("mallory", "viewer")))
    assert sessions.get(olga.token) is olga and sessions.get(vera.token) is vera
    assert len(sessions) == 5  # 3 of mallory's, the others untouched
    assert [sessions.get(m.token, touch=False) for m in mallory[-3:]] == mallory[-3:]
    assert sessions.get(mallory[0].token) is None


def test_the_account_own_least_recently_seen_session_goes_first() -> None:
    clock = Clock()
    sessions = Sessions(IDLE, LIFETIME, per_account=2, clock=clock)
    wall = sessions.start(user("olga"))
    clock.now += 1.0
    desk = sessions.start(user("olga"))
    clock.now += 1.0
    sessions.get(wall.token)  # the wall display's stream: seen more recently than the desk
    clock.now += 1.0
    tablet = sessions.start(user("olga"))
    assert sessions.get(desk.token) is None
    assert sessions.get(wall.token) is wall and sessions.get(tablet.token) is tablet


def test_the_full_cap_is_taken_from_the_account_that_holds_the_most() -> None:
    clock = Clock()
    sessions = Sessions(IDLE, LIFETIME, cap=4, per_account=3, clock=clock)
    anna = sessions.start(user("anna"))  # the least recently seen of all
    crowd = []
    for _ in range(3):
        clock.now += 1.0
        crowd.append(sessions.start(user("bob")))
    clock.now += 1.0
    carl = sessions.start(user("carl"))
    assert len(sessions) == 4
    assert sessions.get(anna.token) is anna and sessions.get(carl.token) is carl
    assert sessions.get(crowd[0].token) is None  # bob's oldest, not anna's
    assert [sessions.get(s.token) for s in crowd[1:]] == crowd[1:]


# -- over HTTP: the stream, the refused action, the password again -----------------------


class Server:
    def __init__(
        self, base: str, clock: Clock, log: EventLog, pipeline: Pipeline, hub: Hub
    ) -> None:
        self.hub = hub
        self.base = base
        self.clock = clock
        self.log = log
        self.pipeline = pipeline


def status_of(pipeline: Pipeline) -> GatewayStatus:
    alarms = pipeline.alarms
    listed = [
        {
            "id": alarm_id,
            "state": state.value,
            "priority": alarms.definitions[alarm_id].priority,
            "condition": alarms.records[alarm_id].condition,
            "acked": alarms.records[alarm_id].acked,
            "value": alarms.records[alarm_id].value,
            "message": alarms.records[alarm_id].message,
        }
        for alarm_id, state in sorted(alarms.annunciated().items())
    ]
    status = {
        "alarms": listed,
        "flooding": False,
        "relays": {},
        "pollers": {},
        "safety": pipeline.matrix.snapshot(),
        "uplink": "connected",
        "outbox": 0,
        "last_seq": 0,
    }
    return cast(GatewayStatus, status)


@pytest.fixture(scope="module")
def accounts() -> Users:
    return Users({"olga": User("olga", "operator", "", hash_password("correct horse"))})


@pytest.fixture
def served(
    tmp_path: Path, accounts: Users, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[asyncio.AbstractEventLoop, Server]]:
    monkeypatch.setattr(routes, "FAILED_SIGNIN_DELAY", 0.01)
    loop = asyncio.new_event_loop()
    clock = Clock()
    settings = GatewaySettings.model_validate({"gateway": {"site": "plant-a", "id": "gw-01"}})
    limit = ThresholdSpec(
        zone="store", key="temperature", point=POINT, limits={"high_high": LimitSpec(limit=30.0)}
    )
    engine = RuleEngine([limit])
    with EventLog.open(tmp_path / "log.db", {"site": "plant-a", "gateway": "gw-01"}) as log:
        pipeline = Pipeline(
            engine, AlarmManager(engine.definitions), CauseEffectMatrix([], [], {}), {}, log
        )
        router = CommandRouter(pipeline, lambda: status_of(pipeline), list)
        trends = Trends(10)
        sessions = Sessions(IDLE, LIFETIME, clock=clock)
        view = View(settings, lambda: status_of(pipeline), trends)
        hub = Hub()
        history = EventHistory(log, 10, lambda event: None)
        pushes: list[None] = []  # after an action; this test publishes states by hand
        api = Api(accounts, sessions, router, view, trends, history, hub, "en", False, pushes.clear)
        runner = web.AppRunner(make_app(api, secure=False))
        port = free_port()
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        try:
            yield loop, Server(f"http://127.0.0.1:{port}", clock, log, pipeline, hub)
        finally:
            hub.close()
            loop.run_until_complete(runner.cleanup())
            loop.close()


def commands_in(log: EventLog) -> list[dict[str, Any]]:
    records = log.read(0, frozenset({"event"}), 1000)
    return [json.loads(r.record) for r in records if r.type.startswith(("alarm.", "command."))]


def test_a_streaming_page_keeps_its_view_and_an_idle_action_asks_for_the_password(
    served: tuple[asyncio.AbstractEventLoop, Server],
) -> None:
    loop, server = served
    clock, hub = server.clock, server.hub
    server.pipeline([Sample.good(POINT, 35.0, time.time(), clock.now)])
    assert server.pipeline.alarms.annunciated()[ALARM].value == "unack"

    async def scenario() -> None:
        async with aiohttp.ClientSession(
            base_url=server.base, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as client:
            async with client.get("/api/alarm-count") as r:  # public, a count and no more
                assert (r.status, await r.json()) == (200, {"high": 1})
            body = {"name": "olga", "password": "correct horse"}
            async with client.post("/api/signin", json=body) as r:
                assert r.status == 200
                headers = {"X-CSRF-Token": (await r.json())["csrf"]}
            stream = await client.get("/api/stream")
            assert stream.status == 200
            await stream.content.readuntil(b"event: state")
            for _ in range(4):  # 200 s of a page open and nobody touching it
                clock.now += 50.0
                for _ in range(2):  # the second is taken after the session check
                    hub.publish("state", {})
                    await stream.content.readuntil(b"event: state")
            async with client.get("/api/me") as r:
                assert r.status == 200  # still signed in, 200 s > IDLE
                assert (await r.json())["act_for"] == 0.0
            before = commands_in(server.log)
            ack = f"/api/alarms/{ALARM}/ack"
            async with client.post(ack, json={}, headers=headers) as r:
                assert r.status == 401
                refused = await r.json()
            assert refused["reason"] == "reauth" and "sign in again" in refused["error"]
            assert commands_in(server.log) == before  # nothing done, nobody's name used
            async with client.post("/api/activity", headers=headers) as r:
                assert (await r.json())["may_act"] is False  # a touch does not reopen it
            wrong = {"password": "wrong horse"}
            async with client.post("/api/reauth", json=wrong, headers=headers) as r:
                assert (r.status, (await r.json())["reason"]) == (401, "password")
            right = {"password": "correct horse"}
            async with client.post("/api/reauth", json=right, headers=headers) as r:
                assert (r.status, (await r.json())["act_for"]) == (200, IDLE)
            async with client.post(ack, json={}, headers=headers) as r:
                assert r.status == 200, await r.text()
            hub.publish("state", {"after": "ack"})
            await stream.content.readuntil(b'{"after":"ack"}')  # the same live page
            clock.now += LIFETIME
            hub.publish("state", {})
            await asyncio.wait_for(stream.content.read(), 5)  # the stream ends
            async with client.get("/api/me") as r:
                assert (r.status, (await r.json())["reason"]) == (401, "signin")
            stream.close()

    loop.run_until_complete(scenario())
    acks = [c for c in commands_in(server.log) if c["type"] == "alarm.acknowledged"]
    assert len(acks) == 1 and "olga" in json.dumps(acks[0])
    assert server.pipeline.alarms.annunciated()[ALARM].value == "acked"


def test_an_operator_may_not_override_a_relay_nor_reset_a_row_and_the_refusal_is_recorded(
    served: tuple[asyncio.AbstractEventLoop, Server],
) -> None:
    loop, server = served
    engineer_only = {
        "/api/relays/fan/override": ("override", {"state": "on", "duration": 60, "reason": "x"}),
        "/api/relays/fan/end-override": ("end_override", {"reason": "x"}),
        "/api/matrix/store-fire/reset": ("reset_row", {"reason": "x"}),
    }

    async def scenario() -> list[tuple[int, str]]:
        answers = []
        async with aiohttp.ClientSession(
            base_url=server.base, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as client:
            body = {"name": "olga", "password": "correct horse"}
            async with client.post("/api/signin", json=body) as r:
                headers = {"X-CSRF-Token": (await r.json())["csrf"]}
            for path, (_, args) in engineer_only.items():
                async with client.post(path, json=args, headers=headers) as r:
                    answers.append((r.status, (await r.json())["error"]))
        return answers

    answers = loop.run_until_complete(scenario())
    commands = [name for name, _ in engineer_only.values()]
    assert answers == [(403, f"role operator may not {name}") for name in commands]
    refused = [c["command"] for c in commands_in(server.log) if c["type"] == "command.refused"]
    assert [(c["name"], c["channel"], c["by"]) for c in refused] == [
        (name, "console", "olga") for name in commands
    ]
    done = [r.type for r in server.log.read(0, frozenset({"event"}), 1000)]
    assert not [t for t in done if t.startswith(("actuator.", "safety."))]  # nothing was done

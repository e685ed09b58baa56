"""Failed sign-ins are throttled per client address: parallel guesses gain nothing, and a
throttled attempt is refused before any argon2 work, even with the right password."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aiohttp
import pytest
from argon2 import PasswordHasher

from gateway.console import routes
from gateway.console.app import make_app
from gateway.console.auth import User, Users
from gateway.console.routes import Api
from gateway.console.sessions import Sessions
from gateway.console.sse import Hub
from gateway.console.throttle import FREE, SigninThrottle
from tests.lab import http_app

# A cheap hash keeps the test fast; the cost sits in the hash, so verify honours it.
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_an_address_waits_longer_after_each_failure_past_the_free_ones() -> None:
    throttle = SigninThrottle(free=3, base=2.0, most=10.0, cap=2)
    for now in (0.0, 0.1):
        throttle.failed("10.0.0.7", now)
        assert throttle.wait("10.0.0.7", now) == 0.0
    throttle.failed("10.0.0.7", 1.0)
    assert throttle.wait("10.0.0.7", 1.0) == 2.0
    throttle.failed("10.0.0.7", 3.0)
    assert throttle.wait("10.0.0.7", 3.0) == 4.0
    for _ in range(100):
        throttle.failed("10.0.0.7", 10.0)
    assert throttle.wait("10.0.0.7", 10.0) == 10.0  # at most `most`
    assert throttle.wait("10.0.0.8", 10.0) == 0.0  # another address is not held back
    throttle.succeeded("10.0.0.7")
    assert throttle.wait("10.0.0.7", 10.0) == 0.0
    for address in ("a", "b", "c"):
        throttle.failed(address, 20.0)
    assert len(throttle) == 2  # bounded: the least recently failing is forgotten


def test_parallel_wrong_passwords_are_throttled_and_the_right_one_waits_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(routes, "FAILED_SIGNIN_DELAY", 0.0)
    users = Users({"olga": User("olga", "operator", "", CHEAP.hash("olga-password-1"))})
    none = cast(Any, None)  # sign-in needs neither the router nor the pages
    api = Api(users, Sessions(60.0, 600.0), none, none, none, none, Hub(), "en", False, none)

    async def run() -> tuple[list[int], int, str | None]:
        async with http_app(make_app(api, secure=False)) as port:
            url = f"http://127.0.0.1:{port}/api/signin"
            async with aiohttp.ClientSession() as client:

                async def signin(password: str) -> tuple[int, str | None]:
                    body = {"name": "olga", "password": password}
                    async with client.post(url, json=body) as reply:
                        return reply.status, reply.headers.get("Retry-After")

                guesses = await asyncio.gather(*(signin(f"guess-{i}") for i in range(20)))
                right, retry_after = await signin("olga-password-1")
            return sorted(status for status, _ in guesses), right, retry_after

    guesses, right, retry_after = asyncio.run(run())
    # Only the free failures were checked, and the one already being checked beside the
    # last of them (two sign-ins are checked at a time); the rest were refused unchecked.
    checked = guesses.count(401)
    assert FREE <= checked <= FREE + 1, guesses
    assert guesses.count(429) == 20 - checked, guesses
    assert right == 429 and retry_after is not None and int(retry_after) >= 1

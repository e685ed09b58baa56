"""The console's JSON API (documented in ``openapi.py``, served at ``/api/openapi.json``).

Reads need a session of any role; actions are POSTs that need a session whose role allows
the command and the session's CSRF token (``csrf.py``; checked by the middleware in
``app.py``). Every action goes through the gateway's ``CommandRouter`` on channel
``console`` with the signed-in name as ``by``: the same validation, the same events and
the same audit trail as the control socket and signed MQTT commands, so the WMS sees
each one. A command the role does not allow is refused with 403 and recorded as a
``command.refused`` event as well.

An action more than ``idle_timeout`` after the session's last interaction (``sessions.py``)
is refused with 401 and ``"reason": "reauth"`` before anything else, and recorded in no
event: whoever stands at the screen may not be the account's holder. ``POST /api/reauth``
with the account's password opens the window again without ending the session or its
live page. ``GET /api/alarm-count`` is public: the number of annunciated high and critical
alarms, nothing more, for the sign-in page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.console.auth import ALLOWED, User, Users
from gateway.console.history import EventHistory
from gateway.console.i18n import CATALOGUES, LANGUAGES, choose
from gateway.console.openapi import document
from gateway.console.sessions import Session, Sessions
from gateway.console.sse import Hub, frame
from gateway.console.throttle import SigninThrottle
from gateway.console.trends import Trends
from gateway.console.view import View
from gateway.core.commands import CommandRouter
from vocab.clock import steady

_logger = logging.getLogger(__name__)

COOKIE = "cellsafe_console"
CHANNEL = "console"
FAILED_SIGNIN_DELAY = 1.0  # seconds a wrong password waits before its answer
COUNT_EVERY = 1.0  # seconds a public alarm count is reused before it is taken again

ALARM_ACTIONS = {a: a for a in ("ack", "reset", "shelve", "unshelve", "disable", "enable")}
RELAY_ACTIONS = {"override": "override", "end-override": "end_override"}
ROW_ACTIONS = {"abort": "abort", "resume": "resume", "reset": "reset_row"}

SESSION_KEY = web.RequestKey("console_session", Session)


def session_of(request: web.Request) -> Session:
    return request[SESSION_KEY]


class Api:
    def __init__(
        self,
        users: Users,
        sessions: Sessions,
        router: CommandRouter,
        view: View,
        trends: Trends,
        history: EventHistory,
        hub: Hub,
        default_language: str,
        secure: bool,
        changed: Callable[[], None],
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.router = router
        self.view = view
        self.trends = trends
        self.history = history
        self.hub = hub
        self.default_language = default_language
        self.secure = secure
        self._changed = changed
        self._signins = asyncio.Semaphore(2)  # argon2 is costly: at most two at a time
        self.throttle = SigninThrottle()  # failed sign-ins per client address
        self._count = (0, -math.inf)  # the sign-in page's alarm count and when it was taken

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/api/openapi.json", self.openapi)
        r.add_get("/api/i18n", self.i18n)
        r.add_get("/api/alarm-count", self.alarm_count)
        r.add_post("/api/signin", self.signin)
        r.add_post("/api/reauth", self.reauth)
        r.add_post("/api/activity", self.activity)
        r.add_post("/api/signout", self.signout)
        r.add_get("/api/me", self.me)
        r.add_post("/api/language", self.language)
        r.add_get("/api/state", self.state)
        r.add_get("/api/stream", self.stream)
        r.add_get("/api/events", self.events)
        r.add_get("/api/trends", self.trend_points)
        r.add_get("/api/trends/{point}", self.trend)
        r.add_post("/api/alarms/{alarm}/{action}", self.alarm_action)
        r.add_post("/api/relays/{relay}/{action}", self.relay_action)
        r.add_post("/api/matrix/{row}/{action}", self.row_action)

    def language_of(self, request: web.Request, session: Session | None) -> str:
        chosen = request.query.get("lang", "") or (session.lang if session else "")
        return choose(chosen, request.headers.get("Accept-Language"), self.default_language)

    # -- public ------------------------------------------------------------------------

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(document())

    async def i18n(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.cookies.get(COOKIE), touch=False)
        lang = self.language_of(request, session)
        return web.json_response({"lang": lang, "languages": LANGUAGES, "text": CATALOGUES[lang]})

    async def alarm_count(self, request: web.Request) -> web.Response:
        """Public, so counted at most once a second however often it is asked."""
        now = steady()
        if now - self._count[1] >= COUNT_EVERY:
            self._count = (self.view.high_active(), now)
        return web.json_response({"high": self._count[0]})

    async def _verify(self, request: web.Request, name: str, password: str) -> User | None:
        """The account if ``password`` is its own, else None after the failure delay;
        throttled per client address (429) before any password work."""
        address = request.remote or ""
        self._throttled(address, name)
        async with self._signins:
            self._throttled(address, name)  # failures may have come while this one waited
            user = await asyncio.get_running_loop().run_in_executor(
                None, self.users.verify, name[:64], password[:1024]
            )
        if user is None:
            self.throttle.failed(address, steady())
            _logger.warning("console: password refused for %r from %s", name[:64], address)
            await asyncio.sleep(FAILED_SIGNIN_DELAY)
            return None
        self.throttle.succeeded(address)
        return user

    async def signin(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        name, password = body.get("name"), body.get("password")
        if not isinstance(name, str) or not isinstance(password, str):
            raise _error(web.HTTPBadRequest, "name and password are required")
        user = await self._verify(request, name, password)
        if user is None:
            raise _error(web.HTTPUnauthorized, "wrong name or password")
        session = self.sessions.start(user)
        _logger.info("console: %s signed in (%s) from %s", user.name, user.role, request.remote)
        response = web.json_response(self._me(request, session))
        response.set_cookie(
            COOKIE,
            session.token,
            httponly=True,
            samesite="Strict",
            secure=self.secure,
            path="/",
        )
        return response

    def _throttled(self, address: str, name: str) -> None:
        """Refuses (429) an address that failed too often, before any password work."""
        wait = self.throttle.wait(address, steady())
        if wait > 0:
            _logger.warning(
                "console: sign-in for %r from %s refused for %.0f s more: too many failures",
                name[:64],
                address,
                wait,
            )
            raise web.HTTPTooManyRequests(
                text=json.dumps({"ok": False, "error": "too many failed sign-ins; wait"}),
                content_type="application/json",
                headers={"Retry-After": str(math.ceil(wait))},
            )

    # -- signed in ---------------------------------------------------------------------

    def _me(self, request: web.Request, session: Session) -> dict[str, Any]:
        return {
            "name": session.user.name,
            "role": session.user.role,
            "lang": self.language_of(request, session),
            "csrf": session.csrf,
            "allowed": sorted(ALLOWED[session.user.role]),
            "idle_timeout": self.sessions.idle,
            "act_for": self.sessions.act_for(session),
        }

    async def me(self, request: web.Request) -> web.Response:
        return web.json_response(self._me(request, session_of(request)))

    async def reauth(self, request: web.Request) -> web.Response:
        """The account's password again: actions are allowed for ``idle_timeout`` more."""
        session = session_of(request)
        password = (await _json_body(request)).get("password")
        if not isinstance(password, str):
            raise _error(web.HTTPBadRequest, "password is required")
        if await self._verify(request, session.user.name, password) is None:
            return web.json_response(
                {"ok": False, "error": "wrong password", "reason": "password"}, status=401
            )
        self.sessions.confirm(session)
        _logger.info("console: %s gave the password again", session.user.name)
        return web.json_response(self._me(request, session))

    async def activity(self, request: web.Request) -> web.Response:
        """The page saw the user touch it; keeps the acting window open, never reopens it."""
        session = session_of(request)
        may_act = self.sessions.interacted(session)
        return web.json_response(
            {"ok": True, "may_act": may_act, "act_for": self.sessions.act_for(session)}
        )

    async def signout(self, request: web.Request) -> web.Response:
        session = session_of(request)
        self.sessions.end(session.token)
        _logger.info("console: %s signed out", session.user.name)
        response = web.json_response({"ok": True})
        response.del_cookie(COOKIE, path="/")
        return response

    async def language(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        lang = body.get("lang")
        if lang not in LANGUAGES:
            raise _error(web.HTTPBadRequest, f"lang: one of {', '.join(LANGUAGES)}")
        session_of(request).lang = str(lang)
        return web.json_response({"ok": True, "lang": lang})

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response(self.view.snapshot())

    async def stream(self, request: web.Request) -> web.StreamResponse:
        token = session_of(request).token

        def alive() -> bool:  # each heartbeat keeps the session for viewing, not acting
            return self.sessions.get(token) is not None

        return await self.hub.stream(request, [frame("state", self.view.snapshot())], alive)

    async def events(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            limit = min(500, max(1, int(q.get("limit", "100"))))
            before = int(q["before"]) if "before" in q else None
        except ValueError as err:
            raise _error(web.HTTPBadRequest, "limit and before are integers") from err
        found = self.history.query(
            q.get("category", ""), q.get("type", ""), q.get("q", "")[:200], before, limit
        )
        return web.json_response({"events": found, "types": self.history.types()})

    async def trend_points(self, request: web.Request) -> web.Response:
        points = [{"point": p, "unit": self.view.units.get(p)} for p in self.trends.points()]
        return web.json_response({"points": points, "size": self.trends.size})

    async def trend(self, request: web.Request) -> web.Response:
        series = self.trends.series(request.match_info["point"])
        if series is None:
            raise _error(web.HTTPNotFound, "no samples of this point")
        series["unit"] = self.view.units.get(series["point"])
        return web.json_response(series)

    # -- actions -----------------------------------------------------------------------

    async def alarm_action(self, request: web.Request) -> web.Response:
        alarm = request.match_info["alarm"]
        command = ALARM_ACTIONS.get(request.match_info["action"])
        body = await _json_body(request)
        args: dict[str, Any] = {"alarm": alarm, "reason": body.get("reason", "")}
        if command == "shelve":
            args["duration"] = body.get("duration")
            if not str(args["reason"]).strip():
                return self._command(request, command, args, refuse="a shelve needs a reason")
        return self._command(request, command, args)

    async def relay_action(self, request: web.Request) -> web.Response:
        command = RELAY_ACTIONS.get(request.match_info["action"])
        body = await _json_body(request)
        args: dict[str, Any] = {"relay": request.match_info["relay"]}
        args["reason"] = body.get("reason", "")
        if command == "override":
            args["state"] = body.get("state")
            args["duration"] = body.get("duration")
        return self._command(request, command, args)

    async def row_action(self, request: web.Request) -> web.Response:
        command = ROW_ACTIONS.get(request.match_info["action"])
        body = await _json_body(request)
        args = {"row": request.match_info["row"], "reason": body.get("reason", "")}
        return self._command(request, command, args)

    def _command(
        self, request: web.Request, command: str | None, args: dict[str, Any], refuse: str = ""
    ) -> web.Response:
        if command is None:
            raise _error(web.HTTPNotFound, f"no action {request.match_info['action']!r}")
        session = session_of(request)
        user = session.user
        if not self.sessions.may_act(session):
            _logger.warning(
                "console: %s in the session of %s refused: no interaction for %.0f s",
                command,
                user.name,
                self.sessions.clock() - session.acted,
            )
            why = "sign in again: no interaction for a while, give the password to act"
            return web.json_response({"ok": False, "error": why, "reason": "reauth"}, status=401)
        self.sessions.interacted(session)
        args = {**args, "by": user.name}
        if not user.may(command):
            why = f"role {user.role} may not {command}"
            self.router.refuse(command, args, CHANNEL, why)
            return web.json_response({"ok": False, "error": why}, status=403)
        if refuse:
            self.router.refuse(command, args, CHANNEL, refuse)
            return web.json_response({"ok": False, "error": refuse}, status=422)
        reply = self.router.handle(command, args, CHANNEL)
        self._changed()
        return web.json_response(reply, status=200 if reply.get("ok") else 409)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError as err:
        raise _error(web.HTTPBadRequest, "the body is not JSON") from err
    if not isinstance(body, dict):
        raise _error(web.HTTPBadRequest, "the body is a JSON object")
    return body


def _error(kind: type[web.HTTPException], why: str) -> web.HTTPException:
    return kind(text=json.dumps({"ok": False, "error": why}), content_type="application/json")

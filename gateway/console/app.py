"""The console assembled: its aiohttp application, middlewares, static files and server.

``Console`` is entered once by ``gateway/app.py`` (a one-yield context, like the health
server): it reads the users file, opens its reader of the event log, serves HTTP (HTTPS
with ``[console.tls]``; a non-loopback bind without it is refused by the config model and
again here) and pushes live updates. On exit it ends every open stream first, so the
server stops without waiting for browsers.

Middlewares, in order: security headers on every answer (a strict Content-Security-Policy:
scripts and styles only from the console itself, no framing), then the session check for
``/api/`` (401 without a live session) and the CSRF check on every POST but the sign-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from gateway.config.console import ConsoleSection, is_loopback
from gateway.config.settings import GatewaySettings
from gateway.console import csrf
from gateway.console.auth import Users
from gateway.console.history import EventHistory
from gateway.console.routes import COOKIE, SESSION_KEY, Api
from gateway.console.sessions import Sessions
from gateway.console.sse import Hub
from gateway.console.trends import Trends
from gateway.console.view import View
from gateway.core.commands import CommandRouter
from gateway.core.status import GatewayStatus
from gateway.core.tasks import cancel_all
from gateway.storage.log import EventLog
from vocab.clock import steady
from vocab.samples import Sample

_logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
PUBLIC = frozenset({"/api/openapi.json", "/api/i18n", "/api/signin"})
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none';"
        " form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(api: Api, secure: bool) -> web.Application:
    """The console's application: the API of ``routes.py``, the page and its assets."""

    @web.middleware
    async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as err:
            err.headers.update(HEADERS)
            raise
        if not response.prepared:
            response.headers.update(HEADERS)
            if secure:
                response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/") or request.path in PUBLIC:
            return await handler(request)
        session = api.sessions.get(request.cookies.get(COOKIE), steady())
        if session is None:
            return web.json_response({"ok": False, "error": "sign in first"}, status=401)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            scheme = "https" if secure else "http"
            why = csrf.refusal(session.csrf, request.headers, scheme, request.host)
            if why is not None:
                _logger.warning("console: %s %s refused: %s", request.method, request.path, why)
                return web.json_response({"ok": False, "error": why}, status=403)
        request[SESSION_KEY] = session
        return await handler(request)

    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app = web.Application(middlewares=[headers, guard], client_max_size=64 * 1024)
    api.add_routes(app)
    app.router.add_get("/", page)
    app.router.add_static("/static/", STATIC, append_version=False)
    return app


def tls_context(config: ConsoleSection) -> ssl.SSLContext | None:
    if config.tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls.cert_file, config.tls.key_file)
    return context


class Console:
    """``async with Console(settings, status, router, log) as console:`` serves until the
    block ends; subscribe ``console.samples`` to the sample bus for values and trends."""

    def __init__(
        self,
        settings: GatewaySettings,
        status: Callable[[], GatewayStatus],
        router: CommandRouter,
        log: EventLog,
    ) -> None:
        config = settings.console
        if config.listen is None or config.users_file is None:
            raise ValueError("[console] listen and users_file are needed to serve a console")
        host, port = config.host_port
        if config.tls is None and not is_loopback(host):
            raise ValueError(f"console: {config.listen} is beyond loopback and has no TLS")
        self.config = config
        self.users = Users.load(config.users_file)
        if not len(self.users):
            _logger.warning("console: %s has no accounts; nobody can sign in", config.users_file)
        self.trends = Trends(config.trend_samples)
        self.hub = Hub()
        self.history = EventHistory(log, config.events_kept, self._on_event)
        self.view = View(settings, status, self.trends)
        self.sessions = Sessions(config.idle_timeout, config.session_lifetime)
        self.api = Api(
            self.users,
            self.sessions,
            router,
            self.view,
            self.trends,
            self.history,
            self.hub,
            config.language,
            config.tls is not None,
            self._push_soon,
        )
        self.app = make_app(self.api, config.tls is not None)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pending = False
        self.port = 0  # the bound port, once serving (``listen`` may say 0)

    def samples(self, samples: Sequence[Sample], /) -> None:
        """A ``SampleHandler`` for the sample bus: values for the tiles and the trends."""
        self.trends(samples)

    def _on_event(self, event: dict[str, Any]) -> None:
        self.hub.publish("event", event)
        self._push_soon()

    def _push_soon(self) -> None:
        if not self._pending:
            self._pending = True
            asyncio.get_running_loop().call_soon(self._push)

    def _push(self) -> None:
        self._pending = False
        self.trends.dirty = False
        if len(self.hub):
            self.hub.publish("state", self.view.snapshot())

    async def _pusher(self) -> None:
        while True:
            await asyncio.sleep(self.config.push_interval)
            if self.trends.dirty:
                self._push()
            self.sessions.purge(steady())

    async def __aenter__(self) -> Console:
        await self.history.__aenter__()
        try:
            runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
            await runner.setup()
            self._runner = runner
            site = web.TCPSite(runner, self._host, self._port, ssl_context=tls_context(self.config))
            await site.start()
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1] if sockets else self._port
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self._tasks.append(asyncio.create_task(self._pusher(), name="console-push"))
        scheme = "https" if self.config.tls else "http"
        _logger.info("console on %s://%s:%d/", scheme, self._host, self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await cancel_all(self._tasks)
        self.hub.close()  # open streams end now, so the runner need not wait for them
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
        await self.history.__aexit__(exc_type, exc, tb)

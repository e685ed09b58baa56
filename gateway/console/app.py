"""The console assembled: its aiohttp application, middlewares, static files and server.

``Console`` is made by ``gateway/app.py`` beside the other sinks (it reads the users file
and takes its cursor on the event log), then served as a one-yield context like the health
server: HTTP, or HTTPS with ``[console.tls]`` (a non-loopback bind without it is refused
by the config model and again here), with live updates pushed to every open page.

Middlewares, in order: security headers on every answer (a strict Content-Security-Policy:
scripts and styles only from the console itself, no framing), then the session check for
``/api/`` (401 without a live session) and the CSRF check on every POST but the sign-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
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
from vocab.samples import Sample

_logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
PUBLIC = frozenset({"/api/openapi.json", "/api/i18n", "/api/signin", "/api/alarm-count"})
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
        scheme = "https" if secure else "http"
        if request.path == "/api/signin":
            # No session yet, so no token: a sign-in from another site's page is refused.
            why = csrf.foreign_origin(request.headers, scheme, request.host)
            if why is not None:
                return web.json_response({"ok": False, "error": why}, status=403)
        if not request.path.startswith("/api/") or request.path in PUBLIC:
            return await handler(request)
        session = api.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            return web.json_response(
                {"ok": False, "error": "sign in first", "reason": "signin"}, status=401
            )
        if request.method not in ("GET", "HEAD", "OPTIONS"):
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
    """Made before the log's first emit (its reader takes a cursor then), served later:

    ``console = Console(settings, log)``, then ``async with console.serve(status, router):``
    until the gateway stops; subscribe ``console.samples`` to the sample bus.
    Raises ``UsersFileError`` for a users file that cannot be read.
    """

    def __init__(self, settings: GatewaySettings, log: EventLog) -> None:
        config = settings.console
        if config.listen is None or config.users_file is None:
            raise ValueError("[console] listen and users_file are needed to serve a console")
        host, port = config.host_port
        if config.tls is None and not is_loopback(host):
            raise ValueError(f"console: {config.listen} is beyond loopback and has no TLS")
        self.settings = settings
        self.config = config
        self.users = Users.load(config.users_file)
        if not len(self.users):
            _logger.warning("console: %s has no accounts; nobody can sign in", config.users_file)
        self.trends = Trends(config.trend_samples)
        self.hub = Hub()
        self.history = EventHistory(log, config.events_kept, self._on_event)
        self.sessions = Sessions(
            config.idle_timeout, config.session_lifetime, per_account=config.sessions_per_account
        )
        self.view: View | None = None
        self._host, self._port = host, port
        self._pending = False

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
        if len(self.hub) and self.view is not None:
            self.hub.publish("state", self.view.snapshot())

    async def _pusher(self) -> None:
        while True:
            await asyncio.sleep(self.config.push_interval)
            if self.trends.dirty:
                self._push()
            self.sessions.purge()

    @contextlib.asynccontextmanager
    async def serve(
        self, status: Callable[[], GatewayStatus], router: CommandRouter
    ) -> AsyncIterator[Console]:
        """Serve until the block ends. On the way out every open stream is ended first, so
        the server stops without waiting for browsers."""
        self.view = View(self.settings, status, self.trends)
        secure = self.config.tls is not None
        api = Api(
            self.users,
            self.sessions,
            router,
            self.view,
            self.trends,
            self.history,
            self.hub,
            self.config.language,
            secure,
            self._push_soon,
        )
        runner = web.AppRunner(make_app(api, secure), handle_signals=False, access_log=None)
        tasks: list[asyncio.Task[None]] = []
        async with self.history:
            await runner.setup()
            try:
                site = web.TCPSite(
                    runner, self._host, self._port, ssl_context=tls_context(self.config)
                )
                await site.start()
                tasks.append(asyncio.create_task(self._pusher(), name="console-push"))
                scheme = "https" if secure else "http"
                _logger.info("console on %s://%s:%d/", scheme, self._host, self._port)
                yield self
            finally:
                await cancel_all(tasks)
                self.hub.close()
                await runner.cleanup()

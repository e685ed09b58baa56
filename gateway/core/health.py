"""Health over HTTP: liveness and readiness as JSON, and the Prometheus metrics.

One aiohttp server on the gateway's own event loop (``[metrics] listen``, loopback in the
example): ``/health/live`` answers 200 while the loop turns and every part makes progress
(the same check that gates systemd's watchdog), ``/health/ready`` answers 200 once every
device has been polled and the outbox is open, and ``/metrics`` renders the collector of
``gateway/core/metrics.py`` at scrape time. Handlers run on the loop, so they read the
gateway's state directly: no thread, no lock.

The runner is entered as a one-yield context: the site is bound before the gateway reports
ready and closed before the parts it reads from.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

_logger = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, dict[str, Any]]]


def make_app(live: Check, ready: Check, registry: CollectorRegistry) -> web.Application:
    async def liveness(request: web.Request) -> web.Response:
        ok, body = live()
        return web.json_response({"ok": ok, **body}, status=200 if ok else 503)

    async def readiness(request: web.Request) -> web.Response:
        ok, body = ready()
        return web.json_response({"ok": ok, **body}, status=200 if ok else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/health/live", liveness)
    app.router.add_get("/health/ready", readiness)
    app.router.add_get("/metrics", metrics)
    return app


@contextlib.asynccontextmanager
async def serve_http(listen: str, app: web.Application) -> AsyncIterator[None]:
    """Serve ``app`` on ``host:port`` until the block ends. The runner takes no signals:
    the gateway's runner owns them."""
    host, port = listen.rsplit(":", 1)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, int(port)).start()
        except OSError as err:
            # A busy or wrong address must not stop detection and relays: the gateway
            # runs on without its HTTP endpoints and says so.
            _logger.error(
                "health and metrics cannot listen on %s (%s): /health and /metrics are off"
                " until the gateway restarts; detection and relays carry on",
                listen,
                err,
            )
        else:
            _logger.info(
                "health and metrics on http://%s/ (/health/live, /health/ready, /metrics)", listen
            )
        yield
    finally:
        await runner.cleanup()

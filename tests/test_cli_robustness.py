"""The command line and the HTTP endpoints fail politely: a closed pipe or a busy port is
a line in the log or an exit code, never a traceback, and never the end of detection."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.core.health import serve_http

ROOT = Path(__file__).resolve().parents[1]


def test_a_reader_that_left_costs_no_traceback() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `cellsafe check-config ... | head -0`: nobody reads
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "check-config", str(ROOT / "config/example.toml")],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr


def test_a_busy_port_turns_http_off_with_one_error_and_the_block_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            ran = False
            async with serve_http(f"127.0.0.1:{port}", web.Application()):
                ran = True
            assert ran

    asyncio.run(scenario())
    assert "cannot listen on 127.0.0.1:" in caplog.text
    assert "detection and relays carry on" in caplog.text


def test_a_free_port_serves() -> None:
    async def scenario() -> int:
        async def hello(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/x", hello)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        async with (
            serve_http(f"127.0.0.1:{port}", app),
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/x") as reply,
        ):
            return reply.status

    assert asyncio.run(scenario()) == 200

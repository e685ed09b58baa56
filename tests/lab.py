"""Shared test rigs: real simulators, a real broker, the gateway as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import tomli_w
from aiohttp import web
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.server import ModbusBaseServer

from drivers.base import Driver
from rules.alarms import ConditionChange
from simulators.net import free_port
from simulators.scenario import Scenario, ZoneSetup, load_scenario
from simulators.warehouse import Warehouse, WarehouseServer
from tests import contract
from vocab.events import Event
from vocab.samples import Sample

ROOT = Path(__file__).resolve().parent.parent


class EventList:
    """An ``EventSink`` that keeps what it is given, conditions reported included."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.conditions: list[ConditionChange] = []

    def condition(self, change: ConditionChange) -> None:
        self.conditions.append(change)

    def emit(self, events: list[Event]) -> None:
        self.events.extend(events)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


class NotifySocket:
    """What systemd listens on: a datagram socket; a thread keeps what arrives, and when."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self._sock.settimeout(0.05)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append((time.monotonic(), fields))

    def with_key(self, key: str) -> list[tuple[float, dict[str, str]]]:
        return [(t, m) for t, m in list(self.messages) if key in m]

    def wait_for(self, key: str, timeout: float = 5.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.with_key(key)
            if found:
                return found[0][1]
            time.sleep(0.01)
        raise AssertionError(f"no {key} within {timeout} s; got {self.messages}")

    def close(self) -> None:
        self._closed.set()
        self._thread.join(2)
        self._sock.close()


def quiet_scenario() -> Scenario:
    """One zone at rest and no steps: for driver and relay tests."""
    return Scenario(
        name="quiet",
        duration=3600,
        zones=[ZoneSetup(name="store", temperature=21.5, humidity=33.3)],
    )


@contextlib.asynccontextmanager
async def warehouse_server(
    scenario: Scenario | None = None, rtu_port: str | None = None
) -> AsyncIterator[WarehouseServer]:
    """The simulator on a free loopback port, and as RTU slaves on ``rtu_port`` if given."""
    server = WarehouseServer(
        Warehouse(scenario or quiet_scenario()), "127.0.0.1", free_port(), rtu_port=rtu_port
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def serving(server: ModbusBaseServer) -> AsyncIterator[None]:
    """A pymodbus ``server`` serving on the event loop once its port is open (at most 5 s);
    shut down when the block ends, even on an error."""
    task = asyncio.create_task(server.serve_forever())
    try:
        async with asyncio.timeout(5):
            await until(lambda: server.transport is not None)
        yield
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def http_app(
    app: web.Application, ssl_context: ssl.SSLContext | None = None, access_log: bool = True
) -> AsyncIterator[int]:
    """``app`` served by aiohttp on a free loopback port, which is yielded; cleaned up
    when the block ends, even on an error. ``access_log=False``: no access log lines."""
    runner = web.AppRunner(app) if access_log else web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def read_polls(driver: Driver, polls: int = 1) -> list[list[Sample]]:
    """``polls`` reads of ``driver`` one after the other, then close it even if a read fails."""
    try:
        return [await driver.read() for _ in range(polls)]
    finally:
        await driver.close()


async def until(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` on the event loop; bound it with ``asyncio.timeout``."""
    # Polling on purpose: the state watched belongs to servers that signal nothing.
    while not predicate():  # noqa: ASYNC110
        await asyncio.sleep(0.02)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def lab_config(tmp_path: Path, sim_port: int, mqtt_port: int, **zone_overrides: Any) -> Path:
    """config/example.toml aimed at this test's simulator and broker."""
    data = tomllib.loads((ROOT / "config" / "example.toml").read_text())
    data["gateway"]["data_dir"] = str(tmp_path / "state")
    data["mqtt"]["port"] = mqtt_port
    for device in data["devices"]:
        device["transport"]["port"] = sim_port
    data["zones"][0]["thresholds"][0].update(zone_overrides)
    path = tmp_path / "gateway.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def write_config(tmp_path: Path, data: dict[str, Any], name: str = "gateway.toml") -> Path:
    path = tmp_path / name
    path.write_text(tomli_w.dumps(data))
    return path


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def hot_zone() -> Scenario:
    return load_scenario("hot_zone")


class GatewayProcess:
    """``python -m gateway run`` as a child process, its log in a file."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log = log
        self.env = env or {}
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(self.config)],
                stdout=log,
                stderr=log,
                env=env,
            )
        return self

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                return process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError(f"gateway ignored signal {sig}") from None
        return process.returncode

    def kill(self) -> None:
        self.terminate(signal.SIGKILL)

    def send(self, sig: int) -> None:
        """A signal to the running gateway (SIGHUP: reload), without waiting for it."""
        assert self._process is not None and self._process.poll() is None
        self._process.send_signal(sig)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None


def outbox_rows(data_dir: Path) -> tuple[int, int]:
    """(rows on disk, last sequence number assigned) read from the gateway's log file."""
    path = data_dir / "outbox.sqlite3"
    if not path.exists():
        return 0, 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            (waiting,) = db.execute("SELECT COUNT(*) FROM log").fetchone()
            (last,) = db.execute("SELECT value FROM counters WHERE name='last_seq'").fetchone()
        except sqlite3.OperationalError:
            return 0, 0
    return int(waiting), int(last)


class WmsSubscriber:
    """Subscribes like the WMS: a persistent session, QoS 1, reconnecting by itself.

    It takes everything under ``cellsafe/``, checks every message against the contract's
    JSON Schemas, and keeps the events (``messages``) apart from the retained state.
    """

    def __init__(
        self,
        port: int,
        client_id: str = "wms-test",
        ca: Path | None = None,
        login: tuple[str, str] | None = None,
        cert: tuple[Path, Path] | None = None,
    ) -> None:
        self.messages: list[dict[str, Any]] = []
        self.state: dict[str, dict[str, Any]] = {}
        self.telemetry: list[dict[str, Any]] = []
        self.invalid: list[str] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self._client.reconnect_delay_set(1, 1)
        if ca is not None:
            certfile, keyfile = (str(cert[0]), str(cert[1])) if cert else (None, None)
            self._client.tls_set(ca_certs=str(ca), certfile=certfile, keyfile=keyfile)
        if login is not None:
            self._client.username_pw_set(*login)
        self._client.on_connect = lambda c, *_: c.subscribe("cellsafe/#", qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("subscriber could not subscribe")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            payload = msg.payload.decode(errors="replace")
        with self._lock:
            if "/commands/" not in msg.topic:  # what the gateway sends, not what it is sent
                self.invalid += contract.problems(msg.topic, payload)
            if "/events/" in msg.topic:
                self.messages.append({"topic": msg.topic, **payload})
            elif "/telemetry/" in msg.topic:
                self.telemetry.append(payload)
            elif "/state/" in msg.topic:
                self.state[msg.topic.rsplit("/", 1)[-1]] = payload

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.snapshot()) >= count, timeout, f"{count} events on the broker")
        return self.snapshot()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

"""ThingsBoard IoT Gateway as a benchmark peer, on our device server and our broker.

    python -m benchmarks.peers.thingsboard --devices 5 --registers 20 --period 0.1 --seconds 30
    python -m benchmarks.peers.thingsboard --recovery --outage 20   # broker outage

From code (the caller runs ``benchmarks.bench_server`` and a ``MosquittoBroker``)::

    with ProbeWriter(modbus_port), ThingsBoardGateway(
        workdir, broker_port, modbus_port, devices=5, registers=20, period=0.1
    ) as tb:
        tb.wait_ready()
        ...  # tb.points(), tb.probe_latencies_ms(); CPU and RSS of tb.pid from /proc

What it relies on, found in ``thingsboard-gateway`` 3.8.5 (``TB_VERSION``):

- A venv of its own, ``.bench/thingsboard-venv`` (``ensure_installed``): its Modbus
  connector needs pymodbus 3.9.2 (ours is 3.16) and at import pip-installs that,
  pyserial and pyserial-asyncio unless present (force-reinstalling another pymodbus).
  They are preinstalled, so start-up runs no pip and TB has no child process.
- Started as ``thingsboard_gateway.tb_gateway.daemon()``, which reads
  ``$TB_GW_CONFIG_DIR/tb_gateway.json`` (JSON; ``logs.json``, ``modbus.json`` beside it).
  Paths must be absolute: TB looks for a relative one from its cwd, fails, and falls back
  to a YAML name with every dot stripped. Logs go to ``workdir/logs``, the console to
  ``workdir/tb-console.log``.
- TB sends no telemetry before its ``getSessionLimits`` RPC on
  ``v1/devices/me/rpc/request/N`` is answered. The listener here (paho in our venv; TB
  ships a paho fork) answers on ``.../rpc/response/N`` as a default ThingsBoard server
  would: 64 KiB payloads, 100 in flight, no rate limits (``tb_gateway.json`` sets none
  either). TB also gets its own request back, since it subscribes to that topic, and logs
  'Connector "getSessionLimits" not found'; harmless.
- Telemetry comes on ``v1/gateway/telemetry`` as ``{device: [{"ts": ms, "values": {..}}]}``,
  ``ts`` being when TB converted the read. Report strategy ``ON_RECEIVED``: every value.
- TB posts to its vendor's update server at start; ``HTTP(S)_PROXY`` point at a closed
  loopback port, so that fails at once (MQTT ignores those variables). Statistics,
  remote configuration and remote shell are off.
- One Modbus request per configured register (no block reads). Each poll of a device is
  a task of its own, so polls overlap once a poll takes longer than the period.
- TB keeps one Modbus client per ``host:port`` string and pymodbus 3.9 sends one request
  at a time per client: ``connections="per_device"`` (default, like our gateway) gives
  every device its own spelling of 127.0.0.1 and so its own connection; ``"shared"`` puts
  all behind one, like units behind a Modbus gateway.
- TB converts whatever reads of a device queued up in one batch (about 0.1 s) under one
  timestamp, so when polls bunch up, older values of a key are overwritten and never
  sent: under load, "registers read by TB" exceeds the points delivered.
- Storage is TB's default in-memory queue: what it polls while the broker is away is
  sent after it reconnects (lost if TB stops). Its MQTT reconnect backs off, so it may
  come back many seconds after the broker does.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.client import ModbusTcpClient

from benchmarks.bench_server import PROBE_STAMP, PROBE_UNIT, PROBE_VALUE
from benchmarks.harness import (
    ROOT,
    Child,
    cpu_seconds,
    device_server,
    now_ms32,
    percentiles,
    rss_mb,
    workspace,
)
from benchmarks.recovery import Point, Recovery, ride_outage
from simulators.mosquitto import MosquittoBroker
from simulators.net import free_port

TB_VERSION = "3.8.5"
# What TB's Modbus connector would otherwise pip-install at import.
_TB_REQUIREMENTS = (
    f"thingsboard-gateway=={TB_VERSION}",
    "pymodbus==3.9.2",
    "pyserial==3.5",
    "pyserial-asyncio==0.6",
    # What its OPC UA connector pip-installs (force-reinstalling any other version) at
    # import: ``required_version`` in ``connectors/opcua/opcua_connector.py``. Ours is 2.x.
    "asyncua==1.1.5",
)
DEFAULT_ROOT = ROOT / ".bench"

TELEMETRY_TOPIC = "v1/gateway/telemetry"
RPC_REQUEST_TOPIC = "v1/devices/me/rpc/request/"
RPC_RESPONSE_TOPIC = "v1/devices/me/rpc/response/"
PROBE_DEVICE = "probe"
_NO_LIMIT = "0:0,"
# A default ThingsBoard server's answer, without rate limits.
SESSION_LIMITS: dict[str, Any] = {
    "maxPayloadSize": 65536,
    "maxInflightMessages": 100,
    "rateLimits": {k: _NO_LIMIT for k in ("messages", "telemetryMessages", "telemetryDataPoints")},
    "gatewayRateLimits": {
        k: _NO_LIMIT for k in ("messages", "telemetryMessages", "telemetryDataPoints")
    },
}


def device_name(unit: int) -> str:
    return f"unit{unit}"


def ensure_installed(root: Path = DEFAULT_ROOT) -> Path:
    """The venv ``root/thingsboard-venv`` with TB and its Modbus and OPC UA connectors'
    needs; returns its python."""
    venv = root / "thingsboard-venv"
    python = venv / "bin" / "python"
    marker = venv / "bench-requirements.txt"
    wanted = "\n".join(_TB_REQUIREMENTS) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    root.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *_TB_REQUIREMENTS],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    marker.write_text(wanted)
    return python


# --- configuration files ----------------------------------------------------------------


def gateway_config(broker_port: int) -> dict[str, Any]:
    """``tb_gateway.json``: TB's shipped defaults, without rate limits, statistics, remote
    configuration or shell."""
    limits = ("rateLimits", "dpRateLimits", "messagesRateLimits")
    device_limits = ("deviceRateLimits", "deviceDpRateLimits", "deviceMessagesRateLimits")
    return {
        "thingsboard": {
            "host": "127.0.0.1",
            "port": broker_port,
            "remoteShell": False,
            "remoteConfiguration": False,
            "latencyDebugMode": False,
            "statistics": {"enable": False, "statsSendPeriodInSeconds": 3600},
            "deviceFiltering": {"enable": False},
            "maxPayloadSizeBytes": 8196,
            "minPackSendDelayMS": 50,
            "minPackSizeToSend": 500,
            "checkConnectorsConfigurationInSeconds": 60,
            "handleDeviceRenaming": True,
            "security": {"type": "accessToken", "accessToken": "bench"},
            "qos": 1,
            "reportStrategy": {"type": "ON_RECEIVED"},
            "checkingDeviceActivity": {"checkDeviceInactivity": False},
            "managerEnabled": False,
            **{key: _NO_LIMIT for key in limits + device_limits},
        },
        "storage": {"type": "memory", "read_records_count": 100, "max_records_count": 100000},
        "grpc": {"enabled": False},
        "connectors": [{"type": "modbus", "name": "Modbus", "configuration": "modbus.json"}],
    }


def loopback_spellings() -> list[str]:
    """Distinct spellings of 127.0.0.1 (octal, hex, short forms), "127.0.0.1" first.

    TB keeps one Modbus client per ``host:port`` string, and its pymodbus (3.9) sends one
    request at a time per client, so devices behind one address share one connection and
    queue behind each other. Devices at separate addresses each get a connection of their
    own; on one loopback server, distinct spellings of the address give TB the same.
    """
    first, zero, one = ("127", "0177", "0x7f"), ("0", "00", "000", "0x0"), ("1", "01", "001", "0x1")
    forms = [f"{a}.{b}.{c}.{d}" for a in first for b in zero for c in zero for d in one]
    forms += [f"{a}.{b}.{d}" for a in first for b in zero for d in one]
    forms += [f"{a}.{d}" for a in first for d in one]
    return [host for host in forms if socket.inet_aton(host) == bytes([127, 0, 0, 1])]


def _slave(
    host: str,
    modbus_port: int,
    unit: int,
    name: str,
    period: float,
    timeseries: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "host": host,
        "port": modbus_port,
        "type": "tcp",
        "method": "socket",
        "unitId": unit,
        "deviceName": name,
        "deviceType": "bench",
        "timeout": 35,
        "byteOrder": "BIG",
        "wordOrder": "BIG",
        "retries": 3,
        "pollPeriod": max(1, round(period * 1000)),
        "connectAttemptTimeMs": 5000,
        "connectAttemptCount": 5,
        "waitAfterFailedAttemptsMs": 300000,
        "attributes": [],
        "timeseries": timeseries,
        "attributeUpdates": [],
        "rpc": [],
    }


def _register(tag: str, address: int, kind: str = "16uint", count: int = 1) -> dict[str, Any]:
    return {
        "tag": tag,
        "type": kind,
        "functionCode": 3,
        "objectsCount": count,
        "address": address,
    }


Connections = Literal["per_device", "shared"]


def modbus_config(
    modbus_port: int,
    devices: int,
    registers: int,
    period: float,
    probe: bool,
    connections: Connections = "per_device",
) -> dict[str, Any]:
    """``modbus.json``: one TCP device per unit, one tag per holding register.

    ``per_device``: a TCP connection per device (as if each had its own address);
    ``shared``: all devices behind one address, one connection, one request at a time.
    """
    hosts = loopback_spellings()
    if connections == "shared":
        hosts = hosts[:1] * (devices + 1)
    elif devices + 1 > len(hosts):
        raise ValueError(f"at most {len(hosts) - 1} devices with a connection each")
    slaves = [
        _slave(
            hosts[unit - 1],
            modbus_port,
            unit,
            device_name(unit),
            period,
            [_register(f"r{address}", address) for address in range(registers)],
        )
        for unit in range(1, devices + 1)
    ]
    if probe:
        stamp = _register("stamp", PROBE_STAMP, "32uint", 2)  # big word first: one uint32
        value = _register("value", PROBE_VALUE)
        slaves.append(
            _slave(hosts[devices], modbus_port, PROBE_UNIT, PROBE_DEVICE, period, [value, stamp])
        )
    return {"master": {"slaves": slaves}}


def logs_config(log_dir: Path) -> dict[str, Any]:
    """``logs.json``: TB's loggers to files in ``log_dir``, nothing on the console.

    TB derives its per-connector log files from the ``connector`` and ``converter``
    handlers, which therefore keep TB's own handler class.
    """
    handler_class = "thingsboard_gateway.tb_utility.tb_rotating_file_handler."
    handler_class += "TimedRotatingFileHandler"
    names = ("service", "connector", "converter", "tb_connection", "storage", "extension")
    handlers = {
        f"{name}Handler": {
            "class": handler_class,
            "formatter": "plain",
            "filename": str(log_dir / f"{name}.log"),
            "backupCount": 1,
            "when": "D",
            "interval": 3,
            "encoding": "utf-8",
            "level": "WARNING" if name == "root" else "NOTSET",
        }
        for name in (*names, "root")
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": handlers,
        "loggers": {
            name: {"handlers": [f"{name}Handler"], "level": "INFO", "propagate": False}
            for name in names
        },
        "root": {"level": "ERROR", "handlers": ["rootHandler"]},
    }


# --- the MQTT side -------------------------------------------------------------------------


class _Listener:
    """Answers TB's ``getSessionLimits`` and counts its telemetry (a paho thread)."""

    def __init__(self, broker_port: int, devices: int, registers: int, track: bool) -> None:
        self._units = {device_name(unit): unit for unit in range(1, devices + 1)}
        self._registers = {f"r{address}": address for address in range(registers)}
        self._track = track
        self._lock = threading.Lock()
        self.points = 0
        self.messages = 0
        self.errors = 0  # messages that could not be read
        self.last_arrival = 0.0
        self.tracked: list[Point] = []
        self.latencies: list[float] = []
        self._last_stamp: int | None = None
        self._subscribed = threading.Event()
        self._closed = False
        # A persistent session: what TB publishes while we are away (broker restart) waits.
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"tb-bench-{os.getpid()}-{id(self):x}",
            clean_session=False,
        )
        self._client.reconnect_delay_set(1, 1)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", broker_port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise RuntimeError("the ThingsBoard listener could not subscribe")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([(TELEMETRY_TOPIC, 1), (RPC_REQUEST_TOPIC + "+", 1)])

    def _on_subscribe(self, *_: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        arrived = time.time()
        try:
            if msg.topic == TELEMETRY_TOPIC:
                self._telemetry(json.loads(msg.payload), arrived)
            elif msg.topic.startswith(RPC_REQUEST_TOPIC):
                request = json.loads(msg.payload)
                if request.get("method") == "getSessionLimits":
                    topic = RPC_RESPONSE_TOPIC + msg.topic.rpartition("/")[2]
                    client.publish(topic, json.dumps(SESSION_LIMITS), qos=1)
        except (ValueError, TypeError, AttributeError):  # an exception would end paho's thread
            self.errors += 1

    def _telemetry(self, payload: dict[str, list[dict[str, Any]]], arrived: float) -> None:
        stamp_now = int(arrived * 1000) & 0xFFFFFFFF
        with self._lock:
            self.messages += 1
            self.last_arrival = arrived
            for name, entries in payload.items():
                unit = self._units.get(name)
                for entry in entries:
                    values: dict[str, Any] = entry.get("values", entry)
                    if unit is not None:
                        self.points += len(values)
                        if self._track:
                            ts = int(entry.get("ts", 0))
                            for key, value in values.items():
                                register = self._registers.get(key)
                                if register is not None:
                                    point = Point(unit, register, int(value), ts, arrived)
                                    self.tracked.append(point)
                    elif name == PROBE_DEVICE and "stamp" in values:
                        self._probe(int(values["stamp"]), stamp_now)

    def _probe(self, stamp: int, now: int) -> None:
        # The first stamp seen may have been written before TB started: a baseline only.
        if stamp != self._last_stamp and self._last_stamp is not None and stamp != 0:
            self.latencies.append(float((now - stamp) & 0xFFFFFFFF))
        self._last_stamp = stamp

    def snapshot_latencies(self) -> list[float]:
        with self._lock:
            return list(self.latencies)

    def snapshot_tracked(self) -> list[Point]:
        with self._lock:
            return list(self.tracked)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.disconnect()
            self._client.loop_stop()


# --- the gateway process ---------------------------------------------------------------------


class ThingsBoardGateway:
    """TB polling units 1..N (and the probe) of a bench server, publishing to a broker.

    ``track_values=True`` keeps every counting value received (for the recovery test).
    """

    def __init__(
        self,
        workdir: Path,
        broker_port: int,
        modbus_port: int,
        devices: int,
        registers: int,
        period: float,
        probe: bool = True,
        *,
        python: Path | None = None,
        track_values: bool = False,
        connections: Connections = "per_device",
    ) -> None:
        self.workdir = workdir.resolve()  # TB resolves its paths from its own cwd
        self.broker_port = broker_port
        self.modbus_port = modbus_port
        self.devices = devices
        self.registers = registers
        self.period = period
        self.probe = probe
        self.track_values = track_values
        self.connections: Connections = connections
        self._python = python
        self._process: Child | None = None
        self._listener: _Listener | None = None

    @property
    def config_dir(self) -> Path:
        return self.workdir / "config"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("ThingsBoard gateway is not running")
        return self._process.pid

    def alive(self) -> bool:
        return self._process is not None and self._process.alive()

    def points(self) -> int:
        """Data points from the counting devices received so far."""
        return self._listener.points if self._listener else 0

    def probe_latencies_ms(self) -> list[float]:
        """Arrival (ms mod 2**32) minus the probe stamp, once per new stamp."""
        return self._listener.snapshot_latencies() if self._listener else []

    def tracked(self) -> list[Point]:
        """Every counting value received, if ``track_values`` was given."""
        return self._listener.snapshot_tracked() if self._listener else []

    def last_arrival(self) -> float:
        return self._listener.last_arrival if self._listener else 0.0

    def ready(self) -> bool:
        return self.points() > 0

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not self.alive():
                raise RuntimeError(f"ThingsBoard gateway died, see {self.log_dir}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no ThingsBoard telemetry after {timeout:g} s, see {self.log_dir}"
                )
            time.sleep(0.05)

    def config_files(self) -> dict[str, dict[str, Any]]:
        """TB's configuration files by name: the gateway, its connector, its logs."""
        return {
            "tb_gateway.json": gateway_config(self.broker_port),
            "modbus.json": modbus_config(
                self.modbus_port,
                self.devices,
                self.registers,
                self.period,
                self.probe,
                self.connections,
            ),
            "logs.json": logs_config(self.log_dir),
        }

    def make_listener(self) -> _Listener:
        """The subscriber that answers TB's ``getSessionLimits`` and counts its telemetry."""
        return _Listener(self.broker_port, self.devices, self.registers, self.track_values)

    def write_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name, content in self.config_files().items():
            (self.config_dir / name).write_text(json.dumps(content, indent=2), encoding="utf-8")

    def start(self) -> ThingsBoardGateway:
        python = self._python or ensure_installed()
        self.write_config()
        try:
            # Subscribed before TB connects, so its getSessionLimits request is seen.
            self._listener = self.make_listener()
            dead_proxy = f"http://127.0.0.1:{free_port()}"
            env = {
                "TB_GW_CONFIG_DIR": str(self.config_dir),
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
                env[name] = dead_proxy
            code = "from thingsboard_gateway.tb_gateway import daemon; daemon()"
            self._process = Child(
                [str(python), "-c", code],
                self.workdir / "tb-console.log",
                env=env,
                cwd=self.workdir,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        try:
            if process is not None:
                process.stop(timeout=5)
        finally:
            # The listener's counts stay readable after the stop.
            if self._listener is not None:
                self._listener.close()

    def __enter__(self) -> ThingsBoardGateway:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- the latency probe writer ------------------------------------------------------------------


class ProbeWriter:
    """Writes value and stamp to the probe unit every ``interval`` s (jittered), in a thread."""

    def __init__(self, modbus_port: int, interval: float = 0.25) -> None:
        self._port = modbus_port
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe-writer", daemon=True)
        self.writes = 0
        self.errors = 0

    def _run(self) -> None:
        client = ModbusTcpClient("127.0.0.1", port=self._port, timeout=2)
        value = 0
        try:
            while not self._stop.is_set():
                value = (value + 1) & 0xFFFF
                stamp = now_ms32()
                try:
                    if not client.connected:
                        client.connect()  # type: ignore[no-untyped-call]
                    response = client.write_registers(
                        PROBE_VALUE, [value, stamp >> 16, stamp & 0xFFFF], device_id=PROBE_UNIT
                    )
                    if response.isError():
                        self.errors += 1
                    else:
                        self.writes += 1
                except Exception:
                    self.errors += 1
                    client.close()  # type: ignore[no-untyped-call]
                # Jitter so that writes do not lock to the gateway's poll phase.
                self._stop.wait(self._interval * random.uniform(0.5, 1.5))
        finally:
            client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> ProbeWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# --- measurements ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Throughput:
    devices: int
    registers: int
    period: float
    seconds: float
    connections: Connections
    points_per_s: float
    polled_per_s: float
    cpu_s_per_100k: float
    points_per_cpu_s: float
    cpu_percent: float
    rss_mb: float
    latency_ms: list[float]
    latency_samples: int

    def lines(self) -> list[str]:
        p50, p95, p99 = self.latency_ms
        offered = self.devices * self.registers / self.period
        return [
            f"ThingsBoard IoT Gateway {TB_VERSION}: {self.devices} devices x {self.registers}"
            f" registers every {self.period:g} s ({offered:,.0f} points/s offered),"
            f" {self.seconds:g} s, {self.connections.replace('_', ' ')} connections",
            f"data points/s at the subscriber: {self.points_per_s:,.0f}"
            f" (registers read by TB: {self.polled_per_s:,.0f}/s)",
            f"TB CPU s per 100k points: {self.cpu_s_per_100k:.2f}",
            f"data points per CPU-second: {self.points_per_cpu_s:,.0f}",
            f"TB CPU: {self.cpu_percent:.1f} % of one core",
            f"TB RSS MB: {self.rss_mb:.1f}",
            f"latency ms p50/p95/p99: {p50:.0f}/{p95:.0f}/{p99:.0f}"
            f" ({self.latency_samples} probe samples)",
        ]


def read_counters(modbus_port: int, devices: int, registers: int) -> int:
    """The sum of all counting registers: how many reads they have had, plus this one."""
    client = ModbusTcpClient("127.0.0.1", port=modbus_port, timeout=5)
    total = 0
    try:
        if not client.connect():  # type: ignore[no-untyped-call]
            raise ConnectionError(f"no Modbus server on port {modbus_port}")
        for unit in range(1, devices + 1):
            for start in range(0, registers, 125):
                count = min(125, registers - start)
                response = client.read_holding_registers(start, count=count, device_id=unit)
                if response.isError():
                    raise RuntimeError(f"reading unit {unit}: {response}")
                total += sum(response.registers)
    finally:
        client.close()  # type: ignore[no-untyped-call]
    return total


def measure_throughput(
    devices: int,
    registers: int,
    period: float,
    seconds: float,
    *,
    settle: float = 3.0,
    probe_interval: float = 0.25,
    workdir: Path | None = None,
    connections: Connections = "per_device",
) -> Throughput:
    """Points/s at the subscriber, TB's CPU and RSS, and probe latency over ``seconds``.

    ``polled_per_s`` counts TB's reads at the server (register values are read counts):
    above ``points_per_s``, TB polls more than it delivers and the rest queues inside it.
    """
    python = ensure_installed()
    with (
        workspace(workdir) as work,
        device_server(devices, registers, work) as modbus_port,
        MosquittoBroker(work / "broker") as broker,
        ProbeWriter(modbus_port, probe_interval),
        ThingsBoardGateway(
            work / "tb",
            broker.port,
            modbus_port,
            devices,
            registers,
            period,
            python=python,
            connections=connections,
        ) as tb,
    ):
        tb.wait_ready()
        time.sleep(settle)
        reads0 = read_counters(modbus_port, devices, registers)
        points0, cpu0, lat0 = tb.points(), cpu_seconds(tb.pid), len(tb.probe_latencies_ms())
        wall0 = time.perf_counter()
        time.sleep(seconds)
        points, cpu = tb.points() - points0, cpu_seconds(tb.pid) - cpu0
        wall = time.perf_counter() - wall0
        # Less the one increment that the first read_counters gave every register.
        reads = read_counters(modbus_port, devices, registers) - reads0 - devices * registers
        rss = rss_mb(tb.pid)
        latencies = tb.probe_latencies_ms()[lat0:]
    return Throughput(
        devices=devices,
        registers=registers,
        period=period,
        seconds=seconds,
        connections=connections,
        points_per_s=points / wall,
        polled_per_s=reads / wall,
        cpu_s_per_100k=cpu / points * 100_000 if points else float("nan"),
        points_per_cpu_s=points / cpu if cpu else float("nan"),
        cpu_percent=cpu / wall * 100,
        rss_mb=rss,
        latency_ms=percentiles(latencies),
        latency_samples=len(latencies),
    )


def measure_recovery(
    devices: int = 5,
    registers: int = 20,
    period: float = 0.1,
    outage: float = 20.0,
    *,
    settle: float = 5.0,
    quiet: float = 5.0,
    timeout: float = 120.0,
    workdir: Path | None = None,
    connections: Connections = "per_device",
) -> Recovery:
    """Stop the broker for ``outage`` s while TB polls, restart it on the same port.

    The broker keeps its sessions on disk (``persistence``), so the listener's persistent
    session and its queue survive the restart. After the restart it waits until nothing
    from the outage window has arrived for ``quiet`` s while live data flows.
    """
    python = ensure_installed()
    with (
        workspace(workdir) as work,
        device_server(devices, registers, work) as modbus_port,
        MosquittoBroker(work / "broker", persistence=True) as broker,
    ):
        gateway = ThingsBoardGateway(
            work / "tb",
            broker.port,
            modbus_port,
            devices,
            registers,
            period,
            probe=False,
            python=python,
            track_values=True,
            connections=connections,
        )
        with gateway as tb:
            tb.wait_ready()
            time.sleep(settle)
            return ride_outage(broker, outage, tb.tracked, tb.last_arrival, quiet, timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--devices", type=int, default=5)
    parser.add_argument("--registers", type=int, default=20)
    parser.add_argument("--period", type=float, default=0.1, help="poll period, s")
    parser.add_argument("--seconds", type=float, default=30, help="measured time, s")
    parser.add_argument("--probe-interval", type=float, default=0.25)
    parser.add_argument("--recovery", action="store_true", help="measure a broker outage")
    parser.add_argument("--outage", type=float, default=20.0, help="broker outage, s")
    parser.add_argument("--workdir", type=Path, help="keep configs and logs here")
    parser.add_argument(
        "--connections",
        choices=["per_device", "shared"],
        default="per_device",
        help="a Modbus TCP connection per device, or one for all (see loopback_spellings)",
    )
    args = parser.parse_args()
    if args.recovery:
        result: Throughput | Recovery = measure_recovery(
            args.devices,
            args.registers,
            args.period,
            args.outage,
            workdir=args.workdir,
            connections=args.connections,
        )
    else:
        result = measure_throughput(
            args.devices,
            args.registers,
            args.period,
            args.seconds,
            probe_interval=args.probe_interval,
            workdir=args.workdir,
            connections=args.connections,
        )
    print("\n".join(result.lines()))


if __name__ == "__main__":
    main()

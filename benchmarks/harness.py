"""What every benchmark needs: the device server and the gateway as child processes, an
MQTT subscriber, and CPU and memory read from ``/proc`` the same way for any process.

Reading another process's ``/proc`` entry is what makes the comparison fair: our gateway
and a peer are measured by the same outside observer, on the same clock.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.net import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its waited-for children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) / _TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for process {pid}")


def percentiles(values: Sequence[float], ranks: Sequence[int] = (50, 95, 99)) -> list[float]:
    """Nearest-rank percentiles; an empty sample gives NaN, never a made-up figure."""
    ordered = sorted(values)
    if not ordered:
        return [float("nan")] * len(ranks)
    return [ordered[min(len(ordered) - 1, max(0, -(-r * len(ordered) // 100) - 1))] for r in ranks]


def now_ms32() -> int:
    """Unix time in milliseconds modulo 2**32: what fits the probe's two stamp registers."""
    return int(time.time() * 1000) & 0xFFFFFFFF


def age_ms(stamp: int) -> float:
    return float((now_ms32() - stamp) & 0xFFFFFFFF)


class Child:
    """A command in a process of its own, its output in a log file; stopped on exit."""

    def __init__(
        self,
        args: Sequence[str],
        log: Path,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                cwd=cwd,
            )
        self.started = time.perf_counter()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def device_server(devices: int, registers: int, workdir: Path) -> Iterator[int]:
    """``benchmarks.bench_server`` on a free port; yields the port."""
    port = free_port()
    args = [sys.executable, "-m", "benchmarks.bench_server", "--port", str(port)]
    args += ["--devices", str(devices), "--registers", str(registers)]
    with Child(args, workdir / "bench-server.log") as server:
        wait_for_port("127.0.0.1", port, timeout=60)
        if not server.alive():
            raise RuntimeError(f"bench server died, see {server.log}")
        yield port


class Subscriber:
    """A paho client in a thread of its own; ``on_message(topic, payload)`` runs there."""

    def __init__(
        self,
        port: int,
        topics: Sequence[str],
        on_message: Callable[[str, bytes], None],
        persistent: bool = False,
    ) -> None:
        """``persistent``: a session the broker keeps (and queues for) while we are away."""
        self._ready = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-{os.getpid()}-{id(self):x}",
            clean_session=not persistent,
        )
        self._client.reconnect_delay_set(1, 1)

        def connected(client: mqtt.Client, *_: Any) -> None:
            client.subscribe([(t, 1) for t in topics])

        def message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            on_message(msg.topic, bytes(msg.payload))

        self._client.on_connect = connected
        self._client.on_subscribe = lambda *_: self._ready.set()
        self._client.on_message = message
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        if not self._ready.wait(10):
            self.close()
            raise RuntimeError("benchmark subscriber could not subscribe")

    @property
    def client(self) -> mqtt.Client:
        return self._client

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def workspace(path: Path | None) -> Iterator[Path]:
    """``path`` (made if missing) to keep configs and logs, or a temporary directory."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
    else:
        with tempfile.TemporaryDirectory(prefix="cellsafe-bench-") as tmp:
            yield Path(tmp)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout:g} s")
        time.sleep(0.02)


def machine() -> str:
    import platform

    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )

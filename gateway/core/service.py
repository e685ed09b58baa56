"""systemd's side of the daemon: readiness, a one-line status and a watchdog heartbeat.

The sd_notify protocol is a datagram of ``KEY=value`` lines sent to the unix socket named
by ``$NOTIFY_SOCKET`` (a path, or an abstract name written with a leading ``@``). It is
small enough to speak directly, which keeps the daemon free of libsystemd (the
``systemd-python`` binding needs a compiler and the library's headers to install) and of
the ``sdnotify`` package (a wrapper of the same dozen lines, unreleased since 2017). Without
``$NOTIFY_SOCKET`` every call does nothing, so the same code runs on a terminal.

The heartbeat runs on the gateway's event loop, so a blocked loop stops it by itself. It is
also gated on progress: ``WATCHDOG=1`` goes out only while every probe (each poller's
count of polls, the rules clock's ticks) has moved within its allowed time. A poller stuck
in a read, or a rules clock that stopped, then lets systemd's ``WatchdogSec`` run out, and
``Restart=on-failure`` starts the gateway anew.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.core.status import GatewayStatus

_logger = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages; a no-op without a socket. Never raises on a send."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC`` (for this process, ``$WATCHDOG_PID``)."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (pid is None or pid == str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"]) or None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """How often to send ``WATCHDOG=1``: half the timeout, as sd_watchdog_enabled(3) asks."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2e6

    def send(self, *lines: str) -> bool:
        """One datagram of ``KEY=value`` lines; False if there is no socket or it failed."""
        if self.address is None:
            return False
        target = self.address
        if target.startswith("@"):
            target = "\0" + target[1:]  # an abstract socket
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(lines).encode(), target)
        except OSError as err:
            if not self._failed:  # once: a missing socket must not flood the log
                _logger.warning("sd_notify to %s failed: %s", self.address, err)
            self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading")

    def stopping(self) -> bool:
        return self.send("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@dataclass(frozen=True, slots=True)
class Probe:
    """A reading that changes when its part makes progress, and how long it may not."""

    name: str
    read: Callable[[], Hashable]
    max_still: float  # seconds


class Progress:
    """Which probes have stood still too long, on the monotonic clock."""

    def __init__(self, probes: Sequence[Probe], now: float) -> None:
        self._probes = list(probes)
        self._last = {p.name: p.read() for p in self._probes}
        self._moved = dict.fromkeys(self._last, now)

    def stalled(self, now: float) -> list[str]:
        stalled = []
        for probe in self._probes:
            value = probe.read()
            if value != self._last[probe.name]:
                self._last[probe.name] = value
                self._moved[probe.name] = now
            elif now - self._moved[probe.name] > probe.max_still:
                stalled.append(probe.name)
        return stalled


@dataclass(slots=True)
class Vitals:
    """What the supervisor last found, for the health endpoints."""

    ready: bool = False
    stalled: list[str] = field(default_factory=list)


def status_line(status: GatewayStatus, devices: Sequence[str]) -> str:
    """One line for ``systemctl status``: devices up (not lost, not garbled), alarms active,
    backlog, uplink."""
    # A reader that sends only garbage reads nothing: as blind as one that is away.
    lost = (".comm", ".garbled")
    comm = [a["id"] for a in status["alarms"] if a["id"].endswith(lost) and a["condition"]]
    down = {alarm_id.split(".")[1] for alarm_id in comm}
    down |= {n for n, src in status.get("sources", {}).items() if src["state"] != "connected"}
    up = sum(1 for d in devices if d not in down)
    active = sum(1 for a in status["alarms"] if a["condition"])
    backlog = status["outbox"] + status["held"]
    line = f"{up}/{len(devices)} devices up, {active} alarms active, backlog {backlog}"
    line += f", uplink {status['uplink']}"
    if status["storage_error"]:
        line += ", storage fault"
    return line


async def supervise(
    notifier: Notifier,
    probes: Sequence[Probe],
    started: Callable[[], bool],
    status: Callable[[], str],
    period: float = 5.0,
    vitals: Vitals | None = None,
) -> None:
    """READY once ``started()``; then STATUS on change and WATCHDOG=1 while all progress.

    Runs as one of the gateway's tasks until cancelled. ``period`` bounds how often the
    status line is refreshed when systemd asked for no watchdog.
    """
    while not started():  # noqa: ASYNC110  (the pollers signal nothing: their counters move)
        await asyncio.sleep(0.05)
    vitals = vitals or Vitals()
    line = status()
    vitals.ready = True
    notifier.ready(line)
    _logger.info("ready: %s", line)
    interval = notifier.watchdog_interval
    tick = min(period, interval) if interval else period
    progress = Progress(probes, time.monotonic())
    if interval:
        notifier.watchdog()
    stalled_before: list[str] = []
    while True:
        await asyncio.sleep(tick)
        stalled = vitals.stalled = progress.stalled(time.monotonic())
        if stalled != stalled_before:
            if stalled:
                _logger.error("no progress in %s: the watchdog heartbeat stops", ", ".join(stalled))
            else:
                _logger.warning("progress again: the watchdog heartbeat resumes")
            stalled_before = stalled
        if interval and not stalled:
            notifier.watchdog()
        new = status()
        if new != line:
            line = new
            notifier.status(line)

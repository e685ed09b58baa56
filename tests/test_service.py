"""sd_notify against a real unix datagram socket: READY, STATUS, WATCHDOG, a blocked loop."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

from gateway.core.service import Notifier, Probe, Progress, status_line, supervise
from gateway.core.status import AlarmStatus, GatewayStatus, SourceStatus
from tests.lab import NotifySocket


def test_ready_and_status_reach_a_path_socket(notify_socket: NotifySocket) -> None:
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": notify_socket.address})
    try:
        assert notifier.ready("2/2 devices up")
    finally:
        notifier.close()
    message = notify_socket.wait_for("READY")
    assert message == {"READY": "1", "STATUS": "2/2 devices up"}


def test_an_abstract_socket_is_reached_by_its_at_name() -> None:
    listener = NotifySocket(f"@cellsafe-test-{uuid.uuid4().hex}")
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": listener.address})
    try:
        assert notifier.watchdog()
        assert listener.wait_for("WATCHDOG") == {"WATCHDOG": "1"}
    finally:
        notifier.close()
        listener.close()


def test_without_a_socket_nothing_is_sent_and_nothing_fails(tmp_path: Path) -> None:
    assert not Notifier.from_environ({}).ready("x")
    gone = Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "absent.sock")})
    assert not gone.status("x")  # refused, logged once, never raised
    assert not gone.status("y")


def test_watchdog_interval_is_half_the_timeout_and_only_for_this_process() -> None:
    mine = Notifier.from_environ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval == 15.0
    other = Notifier.from_environ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None
    assert Notifier.from_environ({}).watchdog_interval is None


def test_progress_names_the_probe_that_stood_still_too_long() -> None:
    counter = {"polls": 0, "ticks": 0}
    progress = Progress(
        [
            Probe("poller a", lambda: counter["polls"], 10.0),
            Probe("rules clock", lambda: counter["ticks"], 5.0),
        ],
        now=100.0,
    )
    counter["polls"] += 1
    assert progress.stalled(104.0) == []
    assert progress.stalled(106.0) == ["rules clock"]
    counter["ticks"] += 1
    assert progress.stalled(107.0) == []
    assert progress.stalled(115.0) == ["poller a", "rules clock"]


def _status(alarms: list[AlarmStatus]) -> GatewayStatus:
    return {
        "alarms": alarms,
        "chattering": [],
        "flooding": False,
        "relays": {},
        "pollers": {},
        "lines": {},
        "sources": {},
        "safety": {},
        "outbox": 3,
        "held": 1,
        "storage_error": "",
        "sinks": {},
        "last_seq": 4,
        "uplink": "connected",
        "broker": "127.0.0.1:1883",
        "uplink_error": "",
    }


def _alarm(alarm_id: str, condition: bool) -> AlarmStatus:
    return AlarmStatus(
        id=alarm_id,
        state="unack",
        priority="high",
        condition=condition,
        acked=False,
        value=None,
        message="",
    )


def test_status_line_counts_devices_up_alarms_active_and_backlog() -> None:
    status = _status(
        [
            _alarm("device.relays.comm", True),
            _alarm("store.temperature.high", True),
            _alarm("store.humidity.high", False),  # returned to normal, not acknowledged
        ]
    )
    line = status_line(status, ["sensors", "relays"])
    assert line == "1/2 devices up, 2 alarms active, backlog 4, uplink connected"


def test_a_garbled_reader_counts_as_down() -> None:
    status = _status([_alarm("device.dock-1.garbled", True)])
    line = status_line(status, ["sensors", "dock-1"])
    assert line.startswith("1/2 devices up, 1 alarms active")


def test_a_push_source_that_is_not_connected_counts_as_down() -> None:
    status = _status([])
    status["sources"] = {
        "panel": SourceStatus(driver="opcua", state="reconnecting", error="refused"),
        "dock-reader": SourceStatus(driver="scanner", state="connected", error=""),
    }
    line = status_line(status, ["sensors", "panel", "dock-reader"])
    assert line.startswith("2/3 devices up,")


class Loop:
    """What the supervisor watches: a poll counter and a rules clock, each a task."""

    def __init__(self) -> None:
        self.polls = 0
        self.ticks = 0

    async def poll(self) -> None:
        while True:
            self.polls += 1
            await asyncio.sleep(0.02)

    async def clock(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0.02)


def _supervisor(notifier: Notifier, loop: Loop, max_still: float) -> asyncio.Task[None]:
    probes = [
        Probe("poller a", lambda: loop.polls, max_still),
        Probe("rules clock", lambda: loop.ticks, max_still),
    ]
    return asyncio.create_task(
        supervise(notifier, probes, lambda: loop.polls > 0, lambda: f"{loop.polls} polls")
    )


def test_ready_after_the_first_poll_then_a_heartbeat_that_stops_with_a_blocked_loop(
    notify_socket: NotifySocket,
) -> None:
    async def scenario() -> tuple[float, float]:
        notifier = Notifier(notify_socket.address, watchdog_usec=100_000)  # every 50 ms
        loop = Loop()
        supervisor = _supervisor(notifier, loop, max_still=1.0)
        await asyncio.sleep(0.2)
        assert not notify_socket.with_key("READY"), "ready before any poll"
        tasks = [asyncio.create_task(loop.poll()), asyncio.create_task(loop.clock())]
        try:
            await asyncio.sleep(0.5)
            blocked_at = time.monotonic()
            time.sleep(1.0)  # noqa: ASYNC251  (the point: the loop is stuck)
            unblocked_at = time.monotonic()
            await asyncio.sleep(0.5)
        finally:
            for task in [supervisor, *tasks]:
                task.cancel()
            await asyncio.gather(supervisor, *tasks, return_exceptions=True)
            notifier.close()
        return blocked_at, unblocked_at

    blocked_at, unblocked_at = asyncio.run(scenario())
    ready_at, ready = notify_socket.with_key("READY")[0]
    assert ready["STATUS"].endswith("polls")
    beats = [t for t, _ in notify_socket.with_key("WATCHDOG")]
    assert len([t for t in beats if ready_at <= t < blocked_at]) >= 5
    assert not [t for t in beats if blocked_at + 0.1 < t < unblocked_at], "beat while blocked"
    assert [t for t in beats if t > unblocked_at], "no beat after the loop ran again"
    assert len(notify_socket.with_key("STATUS")) >= 2, "the status line is not refreshed"


def test_the_heartbeat_stops_while_a_part_makes_no_progress_and_resumes_after(
    notify_socket: NotifySocket,
) -> None:
    async def scenario() -> tuple[float, float]:
        notifier = Notifier(notify_socket.address, watchdog_usec=100_000)
        loop = Loop()
        loop.polls = 1
        supervisor = _supervisor(notifier, loop, max_still=0.3)
        poller = asyncio.create_task(loop.poll())
        clock = asyncio.create_task(loop.clock())
        try:
            await asyncio.sleep(0.4)
            clock.cancel()  # the rules clock stops; the loop itself runs on
            stopped_at = time.monotonic()
            await asyncio.sleep(1.0)
            clock = asyncio.create_task(loop.clock())
            resumed_at = time.monotonic()
            await asyncio.sleep(0.4)
        finally:
            for task in (supervisor, poller, clock):
                task.cancel()
            await asyncio.gather(supervisor, poller, clock, return_exceptions=True)
            notifier.close()
        return stopped_at, resumed_at

    stopped_at, resumed_at = asyncio.run(scenario())
    beats = [t for t, _ in notify_socket.with_key("WATCHDOG")]
    assert [t for t in beats if t < stopped_at]
    assert not [t for t in beats if stopped_at + 0.45 < t < resumed_at], "beat without progress"
    assert [t for t in beats if t > resumed_at], "no beat after progress came back"

"""Line scheduling and RTU timing: pure functions, figures from the serial-line spec."""

from __future__ import annotations

import asyncio
import logging

import pytest

from drivers.modbus_load import LineLoad
from drivers.modbus_schedule import FLOOR, PollDemand, plan_line
from drivers.modbus_timing import (
    character_time,
    exchange_time,
    frame_gap,
    reply_length,
    request_length,
    requests_per_second_limit,
)
from drivers.turn_lock import TurnLock


def test_character_time_and_gap_follow_the_serial_line_spec() -> None:
    assert character_time(9600) == pytest.approx(11 / 9600)
    assert frame_gap(9600) == pytest.approx(3.5 * 11 / 9600)  # 4.01 ms
    assert frame_gap(19200) == pytest.approx(3.5 * 11 / 19200)  # 2.005 ms
    assert frame_gap(38400) == 0.00175  # fixed above 19,200 bit/s
    assert frame_gap(115200) == 0.00175
    with pytest.raises(ValueError, match="baudrate"):
        character_time(0)


def test_frame_lengths_of_the_application_protocol() -> None:
    assert request_length(3) == 8  # unit, fc, address, quantity, CRC
    assert reply_length(3, 1) == 7  # unit, fc, byte count, 2 data, CRC
    assert reply_length(3, 125) == 255
    assert reply_length(1, 9) == 7  # nine coils in two bytes
    assert request_length(16, 2) == 13
    assert reply_length(16, 2) == 8
    with pytest.raises(ValueError, match="function code 43"):
        request_length(43)


def test_exchange_limit_at_9600_and_19200() -> None:
    # 8 + 7 bytes and two gaps of 3.5 characters: 22 characters of 11 bits.
    assert exchange_time(3, 1, 9600) == pytest.approx(22 * 11 / 9600)
    assert requests_per_second_limit(3, 1, 9600) == pytest.approx(9600 / 242)  # 39.7/s
    assert requests_per_second_limit(3, 1, 19200) == pytest.approx(19200 / 242)  # 79.3/s


def test_a_line_within_capacity_keeps_every_interval() -> None:
    plan = plan_line([PollDemand("a", 1.0, 0.2), PollDemand("b", 0.5, 0.1)], capacity=0.9)
    assert not plan.overrun
    assert plan.load == pytest.approx(0.4)
    assert dict(plan.intervals) == {"a": 1.0, "b": 0.5}
    assert plan.stretched == () and plan.stretch == 1.0


def test_an_overrun_line_keeps_the_fastest_and_safety_polls_and_stretches_the_rest() -> None:
    demands = [
        PollDemand("fast", 0.5, 0.1),  # 0.2 of the line, the shortest interval
        PollDemand("gas", 1.0, 0.3, safety=True),  # 0.3, feeds a safety row
        PollDemand("energy", 1.0, 0.4),  # 0.4
        PollDemand("hvac", 2.0, 0.4),  # 0.2
    ]
    plan = plan_line(demands, capacity=0.9)
    assert plan.overrun
    assert plan.load == pytest.approx(1.1)
    assert set(plan.protected) == {"fast", "gas"}
    assert plan.intervals["fast"] == 0.5 and plan.intervals["gas"] == 1.0
    # 0.4 of capacity left for 0.6 of demand: both stretched by 1.5.
    assert plan.stretch == pytest.approx(1.5)
    assert plan.intervals["energy"] == pytest.approx(1.5)
    assert plan.intervals["hvac"] == pytest.approx(3.0)
    assert set(plan.stretched) == {"energy", "hvac"}
    stretched_load = sum(d.cost / plan.intervals[d.device] for d in demands)
    assert stretched_load == pytest.approx(0.9)


def test_protected_polls_keep_their_rate_even_when_they_alone_overrun() -> None:
    plan = plan_line(
        [PollDemand("gas", 1.0, 1.2, safety=True), PollDemand("hvac", 2.0, 0.2)], capacity=0.9
    )
    assert plan.overrun
    assert plan.intervals["gas"] == 1.0
    # The rest share the floor: 0.1 of demand on 0.09 of the line.
    assert plan.intervals["hvac"] == pytest.approx(2.0 * 0.1 / (FLOOR * 0.9))


def test_an_overrun_ends_only_below_the_hysteresis() -> None:
    near = [PollDemand("a", 1.0, 0.44), PollDemand("b", 2.0, 0.9)]  # load 0.89
    assert not plan_line(near, 0.9).overrun
    assert plan_line(near, 0.9, was_overrun=True).overrun  # not yet below 0.855
    low = [PollDemand("a", 1.0, 0.4), PollDemand("b", 2.0, 0.9)]  # load 0.85
    assert not plan_line(low, 0.9, was_overrun=True).overrun


def test_bad_demands_are_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        plan_line([PollDemand("a", 0.0, 0.1)])
    with pytest.raises(ValueError, match="capacity"):
        plan_line([PollDemand("a", 1.0, 0.1)], capacity=1.5)


def test_line_load_logs_an_overrun_once_per_change(caplog: pytest.LogCaptureFixture) -> None:
    load = LineLoad("/dev/ttyUSB0")
    with caplog.at_level(logging.INFO, logger="drivers.modbus_line"):
        load.add("gas", 1.0, 0.05)
        load.add("hvac", 2.0, 0.05)
        load.protect({"gas"})
        for _ in range(30):  # hvac now times out: 2.5 s per poll of 2 s
            load.measured("hvac", 2.5)
        status = load.status()
        for _ in range(30):  # answers again
            load.measured("hvac", 0.05)
    assert status["overrun"] is True
    assert status["protected"] == ["gas"]
    assert list(status["stretched"]) == ["hvac"]
    assert load.interval("gas", 1.0) == 1.0
    assert load.status()["overrun"] is False
    assert load.interval("hvac", 2.0) == 2.0
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("modbus line /dev/ttyUSB0 overrun: polls ask for")
    assert "gas keep their rate, hvac stretched" in messages[0]
    assert messages[1].startswith("modbus line /dev/ttyUSB0 no longer overrun")


def test_an_urgent_turn_goes_before_the_queue_and_a_cancelled_one_passes_it_on() -> None:
    async def go() -> list[str]:
        lock = TurnLock()
        order: list[str] = []

        async def take(name: str, urgent: bool) -> None:
            async with lock.turn(urgent):
                order.append(name)
                await asyncio.sleep(0)

        async with lock:  # held while the others queue up
            tasks = [
                asyncio.create_task(take(name, urgent))
                for name, urgent in (("bulk-1", False), ("bulk-2", False), ("gas", True))
            ]
            gone = asyncio.create_task(take("gone", True))
            await asyncio.sleep(0)
            gone.cancel()
            await asyncio.gather(gone, return_exceptions=True)
        await asyncio.gather(*tasks)
        assert not lock.locked()
        return order

    assert asyncio.run(go()) == ["gas", "bulk-1", "bulk-2"]


def test_a_waiter_cancelled_as_the_holder_lets_go_ends_cancelled() -> None:
    """At shutdown every poll is cancelled at once: the holder releases in the same turn
    as a waiter's cancellation. The waiter must end with CancelledError, the lock free."""

    async def go() -> None:
        lock = TurnLock()

        async def take() -> None:
            async with lock.turn():
                pass

        await lock.__aenter__()  # held
        waiter = asyncio.create_task(take())
        await asyncio.sleep(0)  # queued
        waiter.cancel()
        await lock.__aexit__()  # let go before the waiter runs again
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert not lock.locked()

    asyncio.run(go())

"""``cellsafe alarm list`` counts its alarms in words a reader expects."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.cli.alarm import _print_status


def _status(alarms: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "alarms": alarms,
        "relays": {},
        "uplink": "connected",
        "broker": "127.0.0.1:1883",
        "outbox": 0,
        "sinks": {},
    }


ALARM = {"state": "unack", "priority": "high", "id": "a.temperature.high", "message": "hot"}


@pytest.mark.parametrize(("count", "line"), [(0, "0 alarms"), (1, "1 alarm "), (2, "2 alarms")])
def test_the_count_agrees_with_its_noun(
    count: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _print_status(_status([ALARM] * count))
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"{line.strip()} not normal"

"""``cellsafe alarm list`` and the demo speak in words and columns a reader expects."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.cli.alarm import _print_status
from gateway.cli.demo import alarm_label


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


@pytest.mark.parametrize(
    ("event_type", "label"),
    [
        ("alarm.raised", "ALARM"),
        ("alarm.cleared", "CLEARED"),
        ("alarm.acknowledged", "ACKED"),
        ("alarm.shelved", "SHELVED"),
        ("alarm.returned_to_service", "ENABLED"),
        ("alarm.chattering", "CHATTERING"),
    ],
)
def test_the_demo_labels_fit_their_column(event_type: str, label: str) -> None:
    assert alarm_label(event_type) == label
    assert len(label) <= 10

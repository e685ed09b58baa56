"""Ids: each kind made by one constructor and read back by its parser."""

from __future__ import annotations

import pytest

from vocab.ids import (
    device_comm_id,
    gateway_alarm_id,
    parse_alarm_id,
    parse_point_id,
    point_id,
    relay_fault_id,
    zone_alarm_id,
)


def test_every_kind_parses_back_to_what_made_it() -> None:
    assert parse_point_id(point_id("zone-sensors", "temperature")) == (
        "zone-sensors",
        "temperature",
    )
    assert parse_alarm_id(zone_alarm_id("cell-store", "smoke-1", "high")) == (
        "cell-store",
        "smoke-1",
        "high",
    )
    assert parse_alarm_id(relay_fault_id("fan-1")) == ("actuator", "fan-1", "fault")
    assert parse_alarm_id(device_comm_id("relay-module")) == ("device", "relay-module", "comm")
    assert parse_alarm_id(gateway_alarm_id("outbox", "high")) == ("gateway", "outbox", "high")


@pytest.mark.parametrize("bad", ["nodot", ".key", "device.", "a.b.c"])
def test_a_point_id_of_another_shape_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a point id"):
        parse_point_id(bad)


@pytest.mark.parametrize("bad", ["a.b", "a..c", "a.b.c.d", ""])
def test_an_alarm_id_of_another_shape_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an alarm id"):
        parse_alarm_id(bad)

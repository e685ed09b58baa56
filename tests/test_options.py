"""Each option of the rule, relay and matrix tables is declared once, with its unit and default.

The runtime types in ``rules/`` and ``actuators/`` are the tables the configuration reads;
the config classes may add what is the file's own (which point, the hazard class) but must
not declare an option of the runtime type again.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic.fields import FieldInfo

from actuators.relay import FeedbackSpec, RelaySpec
from actuators.watchdog import WatchdogSpec
from gateway.config.alarms import AlarmsSection, ThresholdConfig, ThresholdPolicy
from gateway.config.settings import EffectConfig, GatewaySettings, ZoneConfig
from rules.alarms import FloodPolicy
from rules.discrete import DiscreteInput
from rules.matrix import EffectSpec, InterlockSpec, Permit, RowSpec
from rules.quality import ReadingChecks
from rules.thresholds import LimitSpec, RateSpec, SensorChecks

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example.toml"

# Every table a rule, relay or matrix option is read from.
TABLES: list[type[Any]] = [
    RelaySpec,
    FeedbackSpec,
    WatchdogSpec,
    RowSpec,
    EffectSpec,
    InterlockSpec,
    Permit,
    LimitSpec,
    RateSpec,
    ReadingChecks,
    SensorChecks,
    ThresholdPolicy,
    ThresholdConfig,
    DiscreteInput,
    FloodPolicy,
    AlarmsSection,
    RelaySpec,
    EffectConfig,
    InterlockSpec,
    WatchdogSpec,
]

# What a config class may add to the runtime type it extends, and nothing else.
OWN_KEYS: dict[type[Any], tuple[type[Any], set[str]]] = {
    EffectConfig: (EffectSpec, {"when"}),
    AlarmsSection: (FloodPolicy, {"latching", "suppress"}),
    SensorChecks: (
        ReadingChecks,
        {"fault_delay", "stale_after", "frozen_after", "frozen_band", "range", "fault_priority"},
    ),
    DiscreteInput: (
        ReadingChecks,
        {"point", "name", "active_when", "on_delay", "priority", "latching", "fault_delay"},
    ),
    ThresholdPolicy: (SensorChecks, {"low_low", "low", "high", "high_high", "rate_of_rise"}),
    ThresholdConfig: (ThresholdPolicy, {"point", "name", "quantity"}),
}

# A number's description names its unit (or says it is a count).
UNITS = ("seconds", "the point's unit", "per minute", "count", "fraction")


def is_number(info: FieldInfo) -> bool:
    return bool({float, int} & set(get_args(info.annotation) or (info.annotation,)))


def fields(table: type[Any]) -> dict[str, FieldInfo]:
    found: dict[str, FieldInfo] = table.__pydantic_fields__
    return found


def test_config_tables_add_no_option_of_the_runtime_type_again() -> None:
    for config, (runtime, own) in OWN_KEYS.items():
        assert issubclass(config, runtime), config
        declared_here = set(inspect.get_annotations(config))
        assert declared_here == own, f"{config.__name__} declares {declared_here - own} again"
        assert set(fields(config)) == set(fields(runtime)) | own


def test_the_settings_read_the_runtime_types() -> None:
    def item(section: str) -> Any:
        return get_args(GatewaySettings.model_fields[section].annotation)[0]

    assert item("matrix") is RowSpec
    assert item("relays") is RelaySpec
    assert item("interlocks") is InterlockSpec
    assert item("watchdogs") is WatchdogSpec
    assert item("effects") is EffectConfig
    assert GatewaySettings.model_fields["alarms"].annotation is AlarmsSection
    assert get_args(ZoneConfig.model_fields["inputs"].annotation)[0] is DiscreteInput
    assert get_args(ZoneConfig.model_fields["thresholds"].annotation)[0] is ThresholdConfig
    for level in ("low_low", "low", "high", "high_high"):
        assert LimitSpec in get_args(fields(ThresholdPolicy)[level].annotation)
    assert RateSpec in get_args(fields(ThresholdPolicy)["rate_of_rise"].annotation)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.__name__)
def test_every_table_forbids_unknown_keys(table: type[Any]) -> None:
    assert table.__pydantic_config__.get("extra") == "forbid"


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.__name__)
def test_every_option_says_what_it_is_and_numbers_name_their_unit(table: type[Any]) -> None:
    own = OWN_KEYS.get(table, (table, set(fields(table))))[1]
    for name, info in fields(table).items():
        if name not in own:
            continue  # described where it is declared
        assert info.description, f"{table.__name__}.{name} has no description"
        if is_number(info):
            assert any(unit in info.description for unit in UNITS), (
                f"{table.__name__}.{name}: {info.description!r} names no unit"
            )


def test_durations_are_in_seconds() -> None:
    durations = re.compile(r"delay|timeout|interval|window|after$|min_on|shelve")
    for table in TABLES:
        for name, info in fields(table).items():
            if durations.search(name) and is_number(info):
                assert info.description and "seconds" in info.description, (
                    f"{table.__name__}.{name}"
                )


def test_the_example_documents_the_declared_defaults() -> None:
    """``# key = value`` lines under a table in the example are that table's defaults."""
    tables = {"relays": RelaySpec, "relays.feedback": FeedbackSpec, "watchdogs": WatchdogSpec}
    table = ""
    checked = 0
    for line in EXAMPLE.read_text().splitlines():
        header = re.match(r"^\s*\[\[([\w.]+)\]\]", line)
        if header:
            table = header.group(1)
            continue
        commented = re.match(r"^\s*# (\w+) = (.+)$", line)
        if commented and table in tables:
            key, value = commented.groups()
            declared = {f.name: f for f in dataclasses.fields(tables[table])}
            assert key in declared, f"{table}.{key} is no option"
            default = tomllib.loads(f"v = {value}")["v"]
            assert fields(tables[table])[key].default == default, f"{table}.{key}"
            checked += 1
    assert checked >= 1

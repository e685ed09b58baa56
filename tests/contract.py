"""The uplink contract as the tests hold the gateway to it: topic -> JSON Schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"

_BY_SUFFIX = {
    "events/alarm": "event-alarm.json",
    "events/actuator": "event-actuator.json",
    "events/command": "event-command.json",
    "events/safety": "event-safety.json",
    "events/notify": "event-notify.json",
    "events/stock": "event-stock.json",
    "downlink/stock-master": "downlink-stock-master.json",
    "state/safety": "state-safety.json",
    "state/status": "state-status.json",
    "state/alarms": "state-alarms.json",
    "state/relays": "state-relays.json",
}


def schema_name(topic: str) -> str:
    parts = topic.split("/")
    kind = parts[3] if len(parts) > 3 else ""
    if kind == "replies":
        return "command-reply.json"
    if kind == "commands":
        return "command-request.json"
    if kind == "telemetry":
        return "telemetry.json"
    try:
        return _BY_SUFFIX["/".join(parts[3:5])]
    except KeyError:
        raise AssertionError(f"no schema for topic {topic!r}") from None


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    return Draft202012Validator(schema, format_checker=FormatChecker())


def problems(topic: str, payload: Any) -> list[str]:
    """Empty when ``payload`` on ``topic`` keeps the contract."""
    name = schema_name(topic)
    return [
        f"{topic} ({name}): {e.json_path}: {e.message}"
        for e in validator(name).iter_errors(payload)
    ]

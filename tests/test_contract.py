"""The contract documents: AsyncAPI lists every topic, every schema is a valid schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from gateway.core.commands import COMMANDS
from gateway.uplink.signing import DELIVERY_COMMANDS
from gateway.uplink.topics import Topics
from tests import contract

DOCS = Path(__file__).resolve().parent.parent / "docs"
TOPICS = Topics("cellsafe", "plant-a", "gw-01")
EVENT_CATEGORIES = ("alarm", "actuator", "command", "safety", "notify", "stock")
STATE_NAMES = ("alarms", "relays", "safety")


def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    return document


def addresses() -> list[re.Pattern[str]]:
    patterns = []
    for channel in asyncapi()["channels"].values():
        regex = re.sub(r"\\\{[a-z]+\\\}", "[^/]+", re.escape(channel["address"]))
        patterns.append(re.compile(f"^{regex}$"))
    return patterns


def gateway_topics() -> list[str]:
    """Every topic the gateway publishes to or subscribes on."""
    topics = [TOPICS.event(c) for c in EVENT_CATEGORIES]
    topics += [TOPICS.status] + [TOPICS.state(n) for n in STATE_NAMES]
    topics.append(TOPICS.telemetry("zone-sensors"))
    topics.append(TOPICS.downlink("stock-master"))
    topics += [TOPICS.command(n) for n in COMMANDS] + [TOPICS.reply(n) for n in COMMANDS]
    return topics


@pytest.mark.parametrize("topic", gateway_topics())
def test_asyncapi_lists_every_topic_and_a_schema_covers_it(topic: str) -> None:
    assert any(p.match(topic) for p in addresses()), f"{topic} is missing from asyncapi.yaml"
    contract.schema_name(topic)


def test_asyncapi_command_parameter_lists_every_command() -> None:
    documented = asyncapi()["components"]["parameters"]["command"]["enum"]
    assert documented == [*COMMANDS, *DELIVERY_COMMANDS]


def test_every_payload_reference_is_a_valid_schema() -> None:
    refs = [m["payload"]["$ref"] for m in asyncapi()["components"]["messages"].values()]
    assert sorted(Path(r).name for r in refs) == sorted(
        p.name for p in (DOCS / "schemas").iterdir()
    )
    for ref in refs:
        Draft202012Validator.check_schema(json.loads((DOCS / ref).read_text()))


def test_schemas_refuse_what_breaks_the_contract() -> None:
    good = {
        "event_id": "0b9c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
        "seq": 1,
        "type": "actuator.switched",
        "ts": "2026-11-24T23:19:48.215Z",
        "site": "plant-a",
        "gateway": "gw-01",
        "actuator": {
            "name": "fan",
            "kind": "relay",
            "point": "relays.fan",
            "state": "on",
            "resting": False,
            "verified": True,
            "attempts": 1,
            "elapsed_ms": 3,
            "causes": [],
        },
    }
    topic = TOPICS.event("actuator")
    assert contract.problems(topic, good) == []
    assert contract.problems(topic, {**good, "seq": 0})
    assert contract.problems(topic, {**good, "extra": 1})
    assert contract.problems(topic, {k: v for k, v in good.items() if k != "event_id"})

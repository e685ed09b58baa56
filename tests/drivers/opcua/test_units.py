"""The OPC UA driver's pure parts: status codes as quality, condition events, the table,
and the certificate command."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.common.events import Event as UaEvent
from cryptography import x509
from pydantic import ValidationError

from drivers.opcua_config import OpcuaConfig
from drivers.opcua_events import condition_state, holds, match, priority_for
from drivers.opcua_quality import code_name, sample_of, severity
from drivers.opcua_security import certificate_subject_uri
from gateway.cli.main import main
from vocab.samples import Quality


def data(value: Any, code: int = 0, source: datetime.datetime | None = None) -> ua.DataValue:
    return ua.DataValue(
        ua.Variant(value),
        StatusCode=ua.StatusCode(ua.UInt32(code)),
        SourceTimestamp=source,  # type: ignore[arg-type]  # a datetime is what it holds
    )


def test_severity_is_the_two_top_bits() -> None:
    assert severity(0) is Quality.GOOD
    assert severity(ua.StatusCodes.GoodClamped) is Quality.GOOD
    assert severity(ua.StatusCodes.UncertainSensorNotAccurate) is Quality.UNCERTAIN
    assert severity(ua.StatusCodes.BadSensorFailure) is Quality.BAD
    assert severity(0xC0000000) is Quality.BAD
    # Info bits in the low word do not hide the code's name.
    assert code_name(ua.StatusCodes.BadSensorFailure | 0x0400) == "BadSensorFailure"
    assert code_name(0x81FF0000) == "0x81FF0000"


def test_a_data_value_becomes_a_sample() -> None:
    stamp = datetime.datetime(2026, 11, 30, 4, 0, tzinfo=datetime.UTC)
    good = sample_of("p.k", data(21.5, source=stamp), False, 100.0, 5.0)
    assert (good.value, good.quality, good.ts, good.mono) == (21.5, Quality.GOOD, 100.0, 5.0)
    assert good.source_ts == stamp.timestamp()
    bad = sample_of("p.k", data(3.0, ua.StatusCodes.BadCommunicationError), False, 1.0, 1.0)
    assert (bad.value, bad.quality, bad.reason) == (None, Quality.BAD, "BadCommunicationError")
    shaky = sample_of("p.k", data(3.0, ua.StatusCodes.UncertainLastUsableValue), False, 1, 1)
    assert (shaky.value, shaky.quality) == (3.0, Quality.UNCERTAIN)
    assert shaky.reason == "UncertainLastUsableValue"
    assert sample_of("p.k", data(2), True, 1, 1).value is True
    assert sample_of("p.k", data(0), True, 1, 1).value is False
    assert sample_of("p.k", data("fire"), False, 1, 1).value == "fire"
    for junk in (float("nan"), [1.0, 2.0]):
        nothing = sample_of("p.k", data(junk), False, 1, 1)
        assert nothing.quality is Quality.BAD and nothing.value is None
        assert nothing.reason is not None and nothing.reason.startswith("no scalar value")
    assert sample_of("p.k", None, False, 1, 1).reason == "no value"


def event(**fields: Any) -> UaEvent:
    ev = UaEvent()
    for name, value in fields.items():
        ev.add_property(name.replace("__", "/"), value, ua.VariantType.Variant)
    return ev


def panel_table(**extra: Any) -> dict[str, Any]:
    return {
        "name": "panel",
        "driver": "opcua",
        "endpoint": "opc.tcp://127.0.0.1:4840",
        **extra,
    }


def test_condition_events_map_to_configured_points() -> None:
    cfg = OpcuaConfig.model_validate(
        panel_table(
            conditions=[
                {"key": "z1-fire", "source": "Zone1", "condition": "Fire"},
                {"key": "z1-any", "source": "Zone1"},
                {"key": "z1-urgent", "source": "Zone1", "min_severity": 800},
            ]
        )
    )
    fire = condition_state(
        event(
            ActiveState__Id=True,
            AckedState__Id=False,
            Severity=700,
            SourceName="Zone1",
            ConditionName="Fire",
            Message=ua.LocalizedText("Zone1 fire"),
            EventId=b"e1",
            NodeId=ua.NodeId(ua.String("Zone1.Conditions.Fire"), ua.Int16(2)),
            Retain=True,
        )
    )
    assert fire is not None and fire.message == "Zone1 fire" and fire.event_id == b"e1"
    matched = match(cfg.conditions, fire)
    assert [c.key for c in matched] == ["z1-fire", "z1-any", "z1-urgent"]
    assert [holds(c, fire) for c in matched] == [True, True, False]
    fault = condition_state(event(ActiveState__Id=True, SourceName="Zone1", ConditionName="Fault"))
    assert fault is not None
    assert [c.key for c in match(cfg.conditions, fault)] == ["z1-any", "z1-urgent"]
    assert condition_state(event(Severity=100, SourceName="Zone1")) is None  # no condition
    assert [priority_for(s) for s in (1, 200, 201, 501, 800, 801, 1000)] == [
        "low",
        "low",
        "medium",
        "high",
        "high",
        "critical",
        "critical",
    ]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            {"points": [{"key": "a", "node_id": "ns=2;s=A", "browse_path": ["2:A"]}]},
            "give exactly one of node_id and browse_path",
        ),
        ({"points": [{"key": "a"}]}, "give exactly one of node_id and browse_path"),
        ({}, "a device needs at least one point or condition"),
        (
            {
                "points": [{"key": "a", "node_id": "i=1"}],
                "conditions": [{"key": "a", "source": "Zone1"}],
            },
            "point key 'a' is used twice",
        ),
        (
            {
                "points": [{"key": "a", "node_id": "i=1"}],
                "identity": {"type": "username", "username": "u", "password": "secret"},
            },
            "Extra inputs are not permitted",
        ),
        (
            {
                "points": [{"key": "a", "node_id": "i=1"}],
                "identity": {"type": "username", "username": "u"},
            },
            "give exactly one of password_env and password_file",
        ),
        (
            {"points": [{"key": "a", "node_id": "i=1"}], "security": {"policy": "Basic128Rsa15"}},
            "does not match any of the expected tags",
        ),
        (
            {"points": [{"key": "a", "node_id": "i=1", "type": "bool", "deadband": 1.0}]},
            "deadband applies to number points only",
        ),
        (
            {
                "points": [{"key": "a", "node_id": "i=1"}],
                "endpoint": "opc.tcp://admin:secret@10.0.0.5:4840",
            },
            "the endpoint must not carry a user or password",
        ),
    ],
)
def test_table_errors(extra: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        OpcuaConfig.model_validate(panel_table(**extra))


def test_opcua_cert_makes_a_certificate_with_the_application_uri(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = tmp_path / "gw.der", tmp_path / "private" / "gw.pem"
    args = ["opcua-cert", "--cert", str(cert), "--key", str(key)]
    assert main([*args, "--uri", "urn:site-a:cellsafe", "--host", "gw-1", "--days", "30"]) == 0
    assert certificate_subject_uri(cert) == "urn:site-a:cellsafe"
    parsed = x509.load_der_x509_certificate(cert.read_bytes())
    lifetime = parsed.not_valid_after_utc - parsed.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=30)
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["gw-1"]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = cert.read_bytes()
    assert main(args) == 1  # never over an existing pair without --force
    assert "exists; --force replaces it" in capsys.readouterr().out
    assert cert.read_bytes() == before
    assert main([*args, "--force"]) == 0
    assert cert.read_bytes() != before


def test_a_wrong_key_is_named_by_file_and_key_path(tmp_path: Path) -> None:
    import tomli_w

    from gateway.config import ConfigError, load_settings

    device = panel_table(
        points=[{"key": "a", "nod_id": "ns=2;s=A"}],
        identity={"type": "username", "username": "u", "password": "in-the-file"},
    )
    site = {"gateway": {"site": "plant-a", "id": "gw-01", "data_dir": str(tmp_path)}}
    path = tmp_path / "site.toml"
    path.write_text(tomli_w.dumps({**site, "devices": [device]}))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, base=None)
    text = "\n".join(caught.value.lines())
    assert "site.toml: devices[0].points[0].nod_id: " in text
    assert "site.toml: devices[0].identity.username.password: " in text
    assert "in-the-file" not in text

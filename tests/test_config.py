from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from drivers import registry
from gateway.config import ConfigError, load_settings
from tests.lab import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "example.toml"

Mutation = Callable[[dict[str, Any]], None]


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def write(tmp_path: Path, data: dict[str, Any], name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(tomli_w.dumps(data))
    return path


def test_example_loads() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.gateway.site == "plant-a"
    assert [d.name for d in settings.devices] == ["zone-sensors", "relay-module"]
    assert settings.relays[0].point == "exhaust-fan"


def test_every_driver_sample_block_validates() -> None:
    for sample in sorted((ROOT / "config" / "drivers").glob("*.toml")):
        for device in tomllib.loads(sample.read_text())["devices"]:
            registry.lookup(device["driver"]).config_model.model_validate(device)


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        parts = path.replace("]", "").replace("[", ".").split(".")
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        last = parts[-1]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[part]
        del node[parts[-1]]

    return mutate


BAD_CASES: list[tuple[str, Mutation, str]] = [
    ("misspelt key", _set("mqtt.prot", 1884), "site.toml: mqtt.prot: unknown key"),
    (
        "misspelt key in a point",
        _set("devices[0].points[1].adress", 3),
        "site.toml: devices[0].points[1].adress: unknown key",
    ),
    (
        "address out of range",
        _set("devices[0].points[0].address", 70000),
        "site.toml: devices[0].points[0].address: Input should be less than or equal to 65535",
    ),
    (
        "wrong type",
        _set("devices[1].poll_interval", "fast"),
        "site.toml: devices[1].poll_interval: Input should be a valid number",
    ),
    ("unknown driver", _set("devices[1].driver", "profibus"), "site.toml: devices[1].driver:"),
    ("missing section", _drop("gateway"), "site.toml: gateway: required key is missing"),
    (
        "bool on a register",
        _set("devices[0].points[0].type", "bool"),
        'site.toml: devices[0].points[0]: type "bool" needs table',
    ),
    (
        "limits out of order",
        _set("zones[0].thresholds[0].high_high", 20.0),
        "site.toml: zones[0].thresholds[0]: high (30.0) must be below high_high (20.0)",
    ),
    (
        "threshold on a missing point",
        _set("zones[0].thresholds[0].point", "zone-sensors.temp"),
        "site.toml: zones[0].thresholds[0].point: unknown point 'zone-sensors.temp'",
    ),
    (
        "relay on an unknown device",
        _set("relays[0].device", "relay-modul"),
        "site.toml: relays[0].device: unknown device 'relay-modul'",
    ),
    (
        "relay on an unknown coil",
        _set("relays[0].point", "fan-9"),
        "site.toml: relays[0].point: 'fan-9' is not a coil of device 'relay-module'",
    ),
    (
        "relay on a read-only input",
        _set("relays[0].point", "exhaust-fan-feedback"),
        "site.toml: relays[0].point: 'exhaust-fan-feedback' is not a coil",
    ),
    (
        "effect on an unknown relay",
        _set("matrix[0].effects[0].relay", "fan"),
        "site.toml: matrix[0].effects[0].relay: unknown relay 'fan'",
    ),
    (
        "cause that matches nothing",
        _set("matrix[0].causes[1]", "electrolyte-store.smoke.*"),
        "site.toml: matrix[0].causes[1]: 'electrolyte-store.smoke.*' matches no alarm",
    ),
    (
        "interlock on an unknown relay",
        _set("interlocks[0].relay", "deluge"),
        "site.toml: interlocks[0].relay: unknown relay 'deluge'",
    ),
    (
        "feedback on a register",
        _set("relays[0].feedback[0].point", "relay-module.heartbeat"),
        "site.toml: relays[0].feedback[0].point: 'relay-module.heartbeat' is not a binary point",
    ),
    (
        "watchdog on a coil",
        _set("watchdogs[0].heartbeat", "cell-siren"),
        "site.toml: watchdogs[0].heartbeat: 'cell-siren' is not a writable register",
    ),
    (
        "duplicate device",
        _set("devices[1].name", "zone-sensors"),
        "site.toml: devices[1].name: 'zone-sensors' is used twice",
    ),
    (
        "zone named like the gateway's own alarms",
        _set("zones[0].name", "gateway"),
        "site.toml: zones[0].name: 'gateway' is reserved",
    ),
    (
        "misspelt key in a relay",
        _set("relays[0].retry_aftr", 1.0),
        "site.toml: relays[0].retry_aftr: unknown key",
    ),
    (
        "misspelt key in a feedback",
        _set("relays[0].feedback[0].timout", 1.0),
        "site.toml: relays[0].feedback[0].timout: unknown key",
    ),
    (
        "misspelt key in a threshold",
        _set("zones[0].thresholds[0].on_dealy", 1.0),
        "site.toml: zones[0].thresholds[0].on_dealy: unknown key",
    ),
    (
        "misspelt key in a limit table",
        _set("zones[0].thresholds[0].high", {"limit": 30.0, "dedband": 1.0}),
        "site.toml: zones[0].thresholds[0].high.dedband: unknown key",
    ),
    (
        "bad percentage deadband",
        _set("zones[0].thresholds[0].deadband", "5 percent"),
        "site.toml: zones[0].thresholds[0].low: "
        'a deadband is a number or a percentage such as "5%"',
    ),
    (
        "misspelt key in a matrix effect",
        _set("matrix[0].effects[0].dealy", 5.0),
        "site.toml: matrix[0].effects[0].dealy: unknown key",
    ),
    (
        "negative effect delay",
        _set("matrix[2].effects[1].delay", -1.0),
        "site.toml: matrix[2].effects[1].delay: Input should be greater than or equal to 0",
    ),
    (
        "misspelt key in an input",
        _set("zones[1].inputs[0].priorty", "high"),
        "site.toml: zones[1].inputs[0].priorty: unknown key",
    ),
    (
        "misspelt key in a watchdog",
        _set("watchdogs[0].intervall", 1.0),
        "site.toml: watchdogs[0].intervall: unknown key",
    ),
    (
        "misspelt key in the alarm policy",
        _set("alarms", {"flood_cont": 5}),
        "site.toml: alarms.flood_cont: unknown key",
    ),
    (
        "password in the file",
        _set("mqtt.password", "hunter2"),
        "site.toml: mqtt.password: secrets do not belong in the config file",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [(m, e) for _, m, e in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_config_names_file_and_key_path(
    tmp_path: Path, mutate: Mutation, expected: str
) -> None:
    data = copy.deepcopy(example())
    mutate(data)
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, data))
    assert any(line.startswith(expected) for line in caught.value.lines()), caught.value.lines()


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    data = example()
    data["relays"][0]["point"] = "nope"
    data["matrix"][0]["effects"][0]["relay"] = "nope"
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, data))
    assert len(caught.value.lines()) == 2


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[gateway]\nsite = plant-a\n")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML: .*line 2"):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothere\.toml: cannot read"):
        load_settings(tmp_path / "nothere.toml")


def test_environment_overrides_one_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLSAFE_MQTT__PORT", "8883")
    monkeypatch.setenv("CELLSAFE_MQTT__PASSWORD", "from-env")
    settings = load_settings(EXAMPLE)
    assert settings.mqtt.port == 8883
    assert settings.mqtt.host == "127.0.0.1"
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)


def test_check_config_cli_summarises_a_good_file() -> None:
    result = cli("check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "example.toml: OK" in result.stdout
    assert "exhaust-fan-1" in result.stdout


def test_the_summary_says_which_devices_push_instead_of_giving_a_period() -> None:
    assert registry.is_push("opcua") and registry.is_push("scanner")
    assert not registry.is_push("modbus")


def test_check_config_cli_fails_without_a_traceback(tmp_path: Path) -> None:
    data = example()
    data["devices"][0]["points"][0]["address"] = -1
    result = cli("check-config", str(write(tmp_path, data, "bad.toml")))
    assert result.returncode == 1
    assert result.stderr.startswith("bad.toml: devices[0].points[0].address:")
    assert "Traceback" not in result.stderr


def test_a_bad_value_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CELLSAFE_MQTT__PORT", "abc")
    with pytest.raises(ConfigError) as caught:
        load_settings(EXAMPLE)
    assert any(
        line.startswith("example.toml: mqtt.port: ") and "set by CELLSAFE_MQTT__PORT" in line
        for line in caught.value.lines()
    ), caught.value.lines()


def _principals(data: dict[str, Any]) -> None:
    data["commands"] = {
        "principals": {"wms-main": {"classes": ["alarm"]}, "shift-lead": {"classes": ["safety"]}}
    }


def test_a_signing_key_in_the_file_is_refused(tmp_path: Path) -> None:
    data = example()
    _principals(data)
    data["commands"]["keys"] = {"wms-main": "k" * 40}
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, data))
    assert caught.value.lines() == [
        "site.toml: commands.keys: secrets do not belong in the config file; set "
        "CELLSAFE_COMMANDS__KEYS__<NAME> or a systemd credential"
    ]


def test_principal_keys_from_the_environment_and_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = example()
    _principals(data)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "commands__keys__shift_lead").write_text("c" * 32 + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    monkeypatch.setenv("CELLSAFE_COMMANDS__KEYS__WMS_MAIN", f"{'a' * 32}, {'b' * 33}")
    settings = load_settings(write(tmp_path, data))
    assert settings.commands.principal_keys() == {
        "wms-main": ["a" * 32, "b" * 33],
        "shift-lead": ["c" * 32],
    }
    assert "a" * 32 not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CELLSAFE_COMMANDS__KEYS__NOBODY", "n" * 32, "a key for 'nobody', but no"),
        ("CELLSAFE_COMMANDS__KEYS__WMS_MAIN", "short", "a key has fewer than 32 characters"),
        ("CELLSAFE_COMMANDS__KEYS__WMS_MAIN", ",".join(["k" * 32] * 3), "at most two keys"),
    ],
)
def test_bad_signing_keys_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    data = example()
    _principals(data)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, data))
    assert any(expected in line for line in caught.value.lines()), caught.value.lines()
    assert value not in str(caught.value)


def test_a_principal_name_must_suit_a_key_name(tmp_path: Path) -> None:
    data = example()
    data["commands"] = {"principals": {"WMS main": {"classes": ["alarm"]}}}
    with pytest.raises(ConfigError, match="principal 'WMS main'"):
        load_settings(write(tmp_path, data))


def test_systemd_credentials_fill_nested_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "mqtt__password").write_text("hunter2\n")
    (credentials / "commands__alarm_token").write_text("t0ken")
    (credentials / "commands__keys__wms").write_text("k" * 40)  # read by [commands] itself
    (credentials / "unrelated").write_text("x")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = load_settings(EXAMPLE)
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "hunter2"
    assert settings.commands.alarm_token is not None
    assert settings.commands.alarm_token.get_secret_value() == "t0ken"

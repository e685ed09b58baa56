"""The gateway's configuration: one pydantic-settings class, one plain model per TOML table.

The tables of rules, relays and the matrix are the runtime types themselves (declared in
``rules/`` and ``actuators/``, each option once with its unit and default), so what the
file says is what runs.

Values come, first source winning, from init arguments, ``CELLSAFE_*`` environment
variables (``CELLSAFE_MQTT__PORT=8883`` overrides one key), credential files (systemd's
``$CREDENTIALS_DIRECTORY``) and the TOML file. Every table forbids unknown keys, so a typo
is an error, not a silently ignored line.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.dataclasses import dataclass
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

import drivers  # noqa: F401  (registers the built-in drivers)
from actuators.relay import RelaySpec
from actuators.watchdog import WatchdogSpec
from drivers import registry
from drivers.base import DeviceConfig
from gateway.config.alarms import (
    AlarmsSection,
    HazardClass,
    Quantity,
    ThresholdConfig,
    ThresholdPolicy,
    apply_class_defaults,
    options,
)
from gateway.config.console import ConsoleSection
from gateway.config.credentials import CredentialsSource
from gateway.config.notify import NotifySection
from gateway.config.safety import SafetySection
from gateway.config.timeseries import TimeSeriesSection
from rules.discrete import DiscreteInput, DiscreteSpec
from rules.matrix import EffectSpec, InterlockSpec, RowSpec
from rules.thresholds import ThresholdSpec
from stock.config import StockSection
from vocab.ids import NAME_PATTERN


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySection(_Section):
    site: str = Field(pattern=NAME_PATTERN, max_length=64)
    id: str = Field(pattern=NAME_PATTERN, max_length=64)
    data_dir: Path = Field(Path("/var/lib/cellsafe"), description="outbox and state live here")
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop", description="uvloop roughly doubles Modbus request throughput"
    )
    operators_group: str | None = Field(
        None,
        pattern=r"^[a-z_][a-z0-9_-]*\$?$",
        max_length=32,
        description="group given the control socket (mode 0660); default: the service's own",
    )


class TlsSection(_Section):
    """TLS to the broker; the table's presence switches it on."""

    ca_file: Path | None = Field(None, description="CA bundle; default: the system's")
    cert_file: Path | None = Field(None, description="client certificate, if the broker asks")
    key_file: Path | None = Field(None, description="the client certificate's key")

    @model_validator(mode="after")
    def _files(self) -> TlsSection:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name} {str(path)!r} is not a readable file")
        return self


class MqttSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    brokers: list[str] = Field(
        default_factory=list,
        description="'host:port' tried in order, then round again; default: host and port",
    )
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        "auto", description="auto: MQTT 5, or 3.1.1 if the broker does not speak 5"
    )
    tls: TlsSection | None = None
    client_id: str | None = Field(None, description="default: cellsafe-<site>-<gateway id>")
    username: str | None = None
    password: SecretStr | None = Field(None, description="environment or credential file only")
    keepalive: int = Field(30, ge=5, le=3600)
    topic_prefix: str = Field("cellsafe", pattern=r"^[A-Za-z0-9_-]+$")
    max_inflight: int = Field(100, ge=1, le=65535)
    reconnect_min: float = Field(0.25, gt=0, le=60, description="first reconnect delay, seconds")
    reconnect_max: float = Field(
        1.0, gt=0, le=3600, description="longest reconnect delay: delivery resumes within it"
    )
    delivery: Literal["broker", "wms"] = Field(
        "broker",
        description="when an event may leave the log: the broker acknowledged it (broker), or"
        " the WMS confirmed it with a `confirm` command (wms; see docs/uplink.md)",
    )
    confirm_within: float = Field(
        600.0,
        gt=0,
        le=86400,
        description="seconds: with delivery = wms, an event unconfirmed for longer raises"
        " gateway.unconfirmed.high",
    )

    @field_validator("brokers")
    @classmethod
    def _host_port(cls, brokers: list[str]) -> list[str]:
        for broker in brokers:
            host, _, port = broker.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{broker!r} is not 'host:port'")
        return brokers

    def broker_list(self) -> list[tuple[str, int]]:
        if not self.brokers:
            return [(self.host, self.port)]
        return [(b.rpartition(":")[0], int(b.rpartition(":")[2])) for b in self.brokers]


CommandClass = Literal["alarm", "status", "config", "safety", "delivery", "stock"]
PRINCIPAL_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MIN_KEY_LENGTH = 32


def key_name(principal: str) -> str:
    """How a principal's key is named: lower case, ``-`` as ``_`` (environment names)."""
    return principal.lower().replace("-", "_")


class PrincipalSection(_Section):
    """A signer of MQTT commands; its keys come from the environment or credentials."""

    classes: list[CommandClass] = Field(min_length=1, description="command classes it may use")
    description: str = ""


class CommandsSection(_Section):
    """Who may command the gateway over MQTT (docs/uplink.md, "Signed commands").

    Principals and their classes are in the file; their keys only in the environment
    (``CELLSAFE_COMMANDS__KEYS__<NAME>``) or a systemd credential (``commands__keys__<name>``),
    two keys separated by a comma while a key is rotated.
    """

    principals: dict[str, PrincipalSection] = Field(default_factory=dict)
    keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="environment only; see principal_keys()"
    )
    window: float = Field(60.0, gt=0, le=3600, description="seconds a signed request is good for")
    skew: float = Field(5.0, ge=0, le=300, description="seconds clocks may disagree")
    shared_tokens: bool = Field(
        False, description="also accept the old unsigned form with a class token (warned)"
    )
    alarm_token: SecretStr | None = Field(None, description="ack, reset, shelve, ...")
    status_token: SecretStr | None = Field(None, description="status requests")
    config_token: SecretStr | None = Field(None, description="configuration reload")
    safety_token: SecretStr | None = Field(None, description="overrides, aborts, row resets")
    delivery_token: SecretStr | None = Field(
        None, description="the WMS's confirm and resend requests (delivery = wms)"
    )

    @field_validator("principals")
    @classmethod
    def _principal_names(cls, principals: dict[str, PrincipalSection]) -> dict[str, Any]:
        seen: dict[str, str] = {}
        for name in principals:
            if not re.match(PRINCIPAL_PATTERN, name):
                raise ValueError(f"principal {name!r}: lower-case letters, digits, '-', '_'")
            if key_name(name) in seen:
                other = seen[key_name(name)]
                raise ValueError(f"principals {other!r} and {name!r} share a key name")
            seen[key_name(name)] = name
        return principals

    @model_validator(mode="after")
    def _keys(self) -> CommandsSection:
        named = {key_name(p) for p in self.principals}
        for name in self.keys:
            if key_name(name) not in named:
                raise ValueError(f"a key for {name!r}, but no [commands.principals] names it")
        for name, keys in self.principal_keys().items():
            if len(keys) > 2:
                raise ValueError(f"principal {name!r}: at most two keys (current and next)")
            if any(len(k) < MIN_KEY_LENGTH for k in keys):
                raise ValueError(
                    f"principal {name!r}: a key has fewer than {MIN_KEY_LENGTH} characters"
                )
        return self

    def principal_keys(self) -> dict[str, list[str]]:
        """Each principal's keys, from the environment or else its credential file."""
        credentials = os.environ.get("CREDENTIALS_DIRECTORY")
        env = {key_name(n): v.get_secret_value() for n, v in self.keys.items()}
        found: dict[str, list[str]] = {}
        for name in self.principals:
            value = env.get(key_name(name))
            if value is None and credentials:
                path = Path(credentials) / f"commands__keys__{key_name(name)}"
                if path.is_file():
                    value = path.read_text(encoding="utf-8")
            if value is not None:
                found[name] = [k.strip() for k in value.split(",") if k.strip()]
        return found

    def tokens(self) -> dict[str, SecretStr | None]:
        return {
            "alarm": self.alarm_token,
            "status": self.status_token,
            "config": self.config_token,
            "safety": self.safety_token,
            "delivery": self.delivery_token,
        }


class MetricsSection(_Section):
    listen: str | None = Field(
        None, pattern=r"^[^:]+:\d+$", description="host:port for Prometheus, e.g. 127.0.0.1:9108"
    )


class TelemetrySection(_Section):
    interval: float = Field(0.0, ge=0, le=86400, description="seconds; 0 switches it off")
    expiry: float = Field(300.0, gt=0, description="telemetry older than this is not sent")


class OutboxSection(_Section):
    max_mb: float = Field(256.0, gt=0, description="queued payload; telemetry dropped above")
    warn_at: float = Field(0.8, gt=0, lt=1, description="share of max_mb that raises an alarm")


class EventFileSection(_Section):
    """A local JSON-lines copy of every event (``gateway/sinks/file.py``); off without a path."""

    path: Path | None = Field(None, description="file to append to; none: no event file")
    telemetry: bool = Field(False, description="also write telemetry records")
    max_mb: float = Field(64.0, gt=0, description="MB at which the file is rotated to <path>.1")
    fsync: bool = Field(True, description="wait for the disk before a batch counts as written")


class LogSection(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = Field(
        "auto",
        description="auto: the journal under systemd, console on a terminal, JSON lines otherwise",
    )


class ZoneConfig(_Section):
    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    hazard_class: HazardClass = "general"
    description: str = ""
    thresholds: list[ThresholdConfig] = Field(default_factory=list)
    inputs: list[DiscreteInput] = Field(default_factory=list)

    def threshold_specs(self, units: Mapping[str, str | None]) -> list[ThresholdSpec]:
        return [t.to_spec(self.name, units.get(t.point)) for t in self.thresholds]

    def input_specs(self) -> list[DiscreteSpec]:
        return [DiscreteSpec(zone=self.name, **options(i, DiscreteInput)) for i in self.inputs]


_TABLE = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class EffectConfig(EffectSpec):
    """Shorthand for a 1ooN matrix row: while an alarm matching ``when`` holds, drive it."""

    when: tuple[str, ...] = Field(min_length=1, description="alarm id patterns, '*' allowed")

    def to_row(self, index: int) -> RowSpec:
        effect = EffectSpec(**options(self, EffectSpec))
        return RowSpec(name=f"effect-{index}", causes=self.when, effects=(effect,))


if TYPE_CHECKING:
    AnyDevice = DeviceConfig
else:

    def _any_device() -> Any:
        models = tuple(registry.lookup(n).config_model for n in registry.names())
        if len(models) == 1:
            return models[0]
        return Annotated[Union[models], Field(discriminator="driver")]  # noqa: UP007

    AnyDevice = _any_device()


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CELLSAFE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    gateway: GatewaySection
    mqtt: MqttSection = MqttSection()
    log: LogSection = LogSection()
    commands: CommandsSection = CommandsSection()
    metrics: MetricsSection = MetricsSection()
    telemetry: TelemetrySection = TelemetrySection()
    outbox: OutboxSection = OutboxSection()
    event_file: EventFileSection = EventFileSection()
    timeseries: TimeSeriesSection = TimeSeriesSection()
    devices: list[AnyDevice] = Field(default_factory=list)
    alarms: AlarmsSection = AlarmsSection()
    hazard_classes: dict[HazardClass, dict[Quantity, ThresholdPolicy]] = Field(
        default_factory=dict, description="defaults by zone class and quantity"
    )
    zones: list[ZoneConfig] = Field(default_factory=list)
    relays: list[RelaySpec] = Field(default_factory=list)
    effects: list[EffectConfig] = Field(default_factory=list)
    matrix: list[RowSpec] = Field(default_factory=list)
    interlocks: list[InterlockSpec] = Field(default_factory=list)
    watchdogs: list[WatchdogSpec] = Field(default_factory=list)
    safety: SafetySection = SafetySection()
    console: ConsoleSection = ConsoleSection()
    notify: NotifySection = NotifySection()
    stock: StockSection = StockSection()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            CredentialsSource(settings_cls),
            TomlConfigSettingsSource(settings_cls, deep_merge=True),
        )

    @model_validator(mode="before")
    @classmethod
    def _class_defaults(cls, data: Any) -> Any:
        return apply_class_defaults(data)

    def fingerprint(self) -> str:
        """A short hash of the effective configuration, secrets left out, for the birth message."""
        dump = self.model_dump_json(
            exclude={"mqtt": {"password"}, "commands": True, "timeseries": {"token"}}
        )
        return hashlib.sha256(dump.encode()).hexdigest()[:16]

    def matrix_rows(self) -> list[RowSpec]:
        """The matrix as configured, with the simple ``[[effects]]`` as rows after it."""
        return [*self.matrix, *(e.to_row(i) for i, e in enumerate(self.effects))]

    @property
    def mqtt_client_id(self) -> str:
        return self.mqtt.client_id or f"cellsafe-{self.gateway.site}-{self.gateway.id}"

"""The gateway's configuration: one pydantic-settings class, one plain model per TOML table.

Values come, first source winning, from init arguments, ``CELLSAFE_*`` environment
variables (``CELLSAFE_MQTT__PORT=8883`` overrides one key), credential files (systemd's
``$CREDENTIALS_DIRECTORY``) and the TOML file. Every table forbids unknown keys, so a typo
is an error, not a silently ignored line.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

import drivers  # noqa: F401  (registers the built-in drivers)
from actuators.relay import RelaySpec
from drivers import registry
from drivers.base import NAME_PATTERN, DeviceConfig
from rules.effects import EffectSpec
from rules.thresholds import Level, ThresholdSpec

HazardClass = Literal["cells", "electrolyte", "powder", "general"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySection(_Section):
    site: str = Field(pattern=NAME_PATTERN, max_length=64)
    id: str = Field(pattern=NAME_PATTERN, max_length=64)
    data_dir: Path = Field(Path("/var/lib/cellsafe"), description="outbox and state live here")


class MqttSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    client_id: str | None = Field(None, description="default: cellsafe-<site>-<gateway id>")
    username: str | None = None
    password: SecretStr | None = Field(None, description="environment or credential file only")
    keepalive: int = Field(30, ge=5, le=3600)
    topic_prefix: str = Field("cellsafe", pattern=r"^[A-Za-z0-9_-]+$")
    max_inflight: int = Field(100, ge=1, le=65535)
    reconnect_min: int = Field(1, ge=1, le=60, description="first reconnect delay, seconds")
    reconnect_max: int = Field(4, ge=1, le=3600, description="longest reconnect delay, seconds")


class LogSection(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = Field(
        "auto", description="auto: console on a terminal, JSON lines otherwise (systemd)"
    )


class ThresholdConfig(_Section):
    """Limits on one analog point; each limit that is set becomes one alarm."""

    point: str = Field(description="point id, '<device>.<key>'")
    name: str | None = Field(None, pattern=NAME_PATTERN, description="default: the point's key")
    low_low: float | None = None
    low: float | None = None
    high: float | None = None
    high_high: float | None = None
    deadband: float = Field(0.0, ge=0, description="the value must return this far to clear")
    on_delay: float = Field(0.0, ge=0, le=3600, description="seconds over the limit to raise")
    off_delay: float = Field(0.0, ge=0, le=3600, description="seconds back inside to clear")
    fault_delay: float = Field(10.0, gt=0, le=3600, description="seconds of bad data to fault")

    @model_validator(mode="after")
    def _limits_in_order(self) -> ThresholdConfig:
        named = [
            ("low_low", self.low_low),
            ("low", self.low),
            ("high", self.high),
            ("high_high", self.high_high),
        ]
        present = [(n, v) for n, v in named if v is not None]
        if not present:
            raise ValueError("set at least one of low_low, low, high, high_high")
        for (lower_name, lower), (upper_name, upper) in itertools.pairwise(present):
            if lower >= upper:
                raise ValueError(f"{lower_name} ({lower}) must be below {upper_name} ({upper})")
        return self

    @property
    def key(self) -> str:
        return self.name or self.point.rsplit(".", 1)[-1]

    def to_spec(self, zone: str, unit: str | None = None) -> ThresholdSpec:
        levels: dict[Level, float | None] = {
            "low_low": self.low_low,
            "low": self.low,
            "high": self.high,
            "high_high": self.high_high,
        }
        return ThresholdSpec(
            zone=zone,
            key=self.key,
            point=self.point,
            limits={lvl: v for lvl, v in levels.items() if v is not None},
            deadband=self.deadband,
            on_delay=self.on_delay,
            off_delay=self.off_delay,
            fault_delay=self.fault_delay,
            unit=unit,
        )


class ZoneConfig(_Section):
    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    hazard_class: HazardClass = "general"
    description: str = ""
    thresholds: list[ThresholdConfig] = Field(default_factory=list)


class RelayConfig(_Section):
    """An output on a writable binary point, e.g. an exhaust fan's contactor coil."""

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    device: str
    point: str = Field(description="key of a coil point on that device")
    resting: bool = Field(False, description="the state with no cause active")
    verify_timeout: float = Field(2.0, gt=0, le=120, description="seconds for the read-back")
    retries: int = Field(2, ge=0, le=10, description="re-sends after a failed verification")

    def to_spec(self) -> RelaySpec:
        return RelaySpec(
            name=self.name,
            device=self.device,
            point=self.point,
            resting=self.resting,
            verify_timeout=self.verify_timeout,
            retries=self.retries,
        )


class EffectConfig(_Section):
    """While any alarm matching ``when`` is active, drive ``relay`` to ``state``."""

    when: list[str] = Field(min_length=1, description="alarm id patterns, '*' allowed")
    relay: str
    state: bool = True

    def to_spec(self) -> EffectSpec:
        return EffectSpec(patterns=tuple(self.when), relay=self.relay, state=self.state)


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
        secrets_dir=os.environ.get("CREDENTIALS_DIRECTORY"),
    )

    gateway: GatewaySection
    mqtt: MqttSection = MqttSection()
    log: LogSection = LogSection()
    devices: list[AnyDevice] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
    relays: list[RelayConfig] = Field(default_factory=list)
    effects: list[EffectConfig] = Field(default_factory=list)

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
            file_secret_settings,
            TomlConfigSettingsSource(settings_cls),
        )

    @property
    def mqtt_client_id(self) -> str:
        return self.mqtt.client_id or f"cellsafe-{self.gateway.site}-{self.gateway.id}"

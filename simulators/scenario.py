"""Scenarios are data: zones to build and timed steps that change them.

A step may set a zone's heat or humidity load, jump its temperature, and say a sentence
that the demo prints, so that a tester can script a thermal-runaway day in TOML.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulators.physics import Zone
from simulators.relay_module import ChannelSetup


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneSetup(_Strict):
    name: str
    temperature: float = 22.0
    humidity: float = 35.0
    ambient_temperature: float = 22.0
    ambient_humidity: float = 40.0
    fresh_air_temperature: float = 16.0
    fresh_air_humidity: float = 30.0
    loss_rate: float = Field(0.005, ge=0)
    fan_rate: float = Field(0.08, ge=0)

    def build(self) -> Zone:
        return Zone(**self.model_dump())


class Step(_Strict):
    at: float = Field(ge=0, description="simulated seconds from the start")
    zone: str | None = None
    say: str = ""
    heat_load: float | None = Field(None, description="degC per second added")
    humidity_load: float | None = Field(None, description="%RH per second added")
    temperature: float | None = None
    h2_load: float | None = Field(None, description="ppm per second")
    co_load: float | None = Field(None, description="ppm per second")
    hf_load: float | None = Field(None, description="ppm per second")
    smoke_load: float | None = Field(None, description="%obs/m per second")
    detector_stuck: tuple[int, float] | None = Field(
        None, description="[detector 1-3, value]: that smoke detector fails at a fixed reading"
    )
    abort_pressed: bool | None = Field(None, description="the zone's abort button")
    panel_state: Literal["normal", "pre-alarm", "fire", "fault", "disabled", "auto"] | None = Field(
        None,
        description="the fire panel's zone watching this zone is held in this state; "
        "auto lets its detectors decide again",
    )


class RelayModuleSetup(_Strict):
    channels: list[ChannelSetup] = Field(
        default_factory=list, description="default: channel i is the fan of zone i, energised"
    )
    airflow_delay: float = Field(2.0, ge=0, description="seconds from fan start to airflow")
    watchdog: float = Field(0.0, ge=0, description="host watchdog, seconds; 0: off")


class Scenario(_Strict):
    name: str
    description: str = ""
    duration: float = Field(gt=0, description="simulated seconds; the demo stops after it")
    zones: list[ZoneSetup] = Field(min_length=1)
    steps: list[Step] = Field(default_factory=list)
    relay_module: RelayModuleSetup = RelayModuleSetup()

    @model_validator(mode="after")
    def _steps_name_zones(self) -> Scenario:
        names = {z.name for z in self.zones}
        for i, step in enumerate(self.steps):
            if step.zone is not None and step.zone not in names:
                raise ValueError(f"steps[{i}].zone: unknown zone {step.zone!r}")
        return self


class ScenarioError(ValueError):
    """A scenario that cannot be loaded: an unknown name, an unreadable file, bad TOML or
    a key the model refuses. The message is one line for the command line."""


def bundled_scenarios() -> list[str]:
    """The names of the scenarios shipped in ``simulators/scenarios/``, sorted."""
    folder = resources.files("simulators").joinpath("scenarios")
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A bundled scenario by name (``hot_zone``) or any TOML file by path.

    Raises ``ScenarioError`` (one line naming the scenario) for an unknown name, a file
    that cannot be read, bad TOML or a refused key."""
    path = Path(name_or_path)
    try:
        if path.suffix == ".toml":
            text = path.read_text(encoding="utf-8")
        else:
            if str(name_or_path) not in bundled_scenarios():
                raise ScenarioError(
                    f"unknown scenario {str(name_or_path)!r}; bundled: "
                    f"{', '.join(bundled_scenarios())}, or a path to a .toml file"
                )
            text = (
                resources.files("simulators")
                .joinpath("scenarios", f"{name_or_path}.toml")
                .read_text(encoding="utf-8")
            )
        return Scenario.model_validate(tomllib.loads(text))
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{path}: not valid TOML: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise ScenarioError(f"{path}: {where}: {first['msg']}") from None

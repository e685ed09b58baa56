"""Name -> driver. The only place where the core learns which drivers exist."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from drivers.base import DeviceConfig, Driver

C = TypeVar("C", bound=DeviceConfig)


@dataclass(frozen=True, slots=True)
class DriverEntry:
    config_model: type[DeviceConfig]
    factory: Callable[[Any], Driver]


_DRIVERS: dict[str, DriverEntry] = {}


def register(name: str, config_model: type[C], factory: Callable[[C], Driver]) -> None:
    if name in _DRIVERS:
        raise ValueError(f"driver {name!r} is registered twice")
    _DRIVERS[name] = DriverEntry(config_model, factory)


def lookup(name: str) -> DriverEntry:
    return _DRIVERS[name]


def names() -> list[str]:
    return sorted(_DRIVERS)


def create(config: DeviceConfig) -> Driver:
    return _DRIVERS[config.driver].factory(config)

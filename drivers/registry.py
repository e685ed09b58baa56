"""Name -> driver. The only place where the core learns which drivers exist.

A driver registers its config model, its factory and, if devices of that driver depend on
each other (several Modbus units on one serial line), a check across all of them that
runs once at load time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from drivers.base import DeviceConfig, Driver, ServiceDriver

C = TypeVar("C", bound=DeviceConfig)

# ``[(index in [[devices]], config), ...]`` -> ``[(key path, message), ...]``
GroupCheck = Callable[[Sequence[tuple[int, Any]]], list[tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class DriverEntry:
    config_model: type[DeviceConfig]
    factory: Callable[[Any], Driver]
    check: GroupCheck | None = None


_DRIVERS: dict[str, DriverEntry] = {}


def register(
    name: str,
    config_model: type[C],
    factory: Callable[[C], Driver],
    check: Callable[[Sequence[tuple[int, C]]], list[tuple[str, str]]] | None = None,
) -> None:
    if name in _DRIVERS:
        raise ValueError(f"driver {name!r} is registered twice")
    _DRIVERS[name] = DriverEntry(config_model, factory, check)


def lookup(name: str) -> DriverEntry:
    return _DRIVERS[name]


def names() -> list[str]:
    return sorted(_DRIVERS)


def is_push(name: str) -> bool:
    """Whether devices of driver ``name`` push (``ServiceDriver``) rather than being polled."""
    factory = _DRIVERS[name].factory
    return isinstance(factory, type) and issubclass(factory, ServiceDriver)


def create(config: DeviceConfig) -> Driver:
    return _DRIVERS[config.driver].factory(config)


def check_devices(devices: Sequence[DeviceConfig]) -> list[tuple[str, str]]:
    """Each driver's cross-device check over its own devices: ``(key path, message)``."""
    groups: dict[str, list[tuple[int, DeviceConfig]]] = {}
    for index, device in enumerate(devices):
        groups.setdefault(device.driver, []).append((index, device))
    problems: list[tuple[str, str]] = []
    for name, members in groups.items():
        check = _DRIVERS[name].check
        if check is not None:
            problems += check(members)
    return problems

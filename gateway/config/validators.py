"""Checks that span tables: every reference must name something that exists.

Each problem carries the key path of the offending value, so that the engineer is sent to
the line to fix, e.g. ``relays[0].point: 'fan9' is not a point of device 'relay-module'``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from drivers import registry
from drivers.base import PointInfo
from gateway.config.settings import GatewaySettings
from vocab.ids import RESERVED_NAMES, device_comm_id, point_id, relay_fault_id


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str


def _duplicates(names: Iterable[str], table: str) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for index, name in enumerate(names):
        if name in seen:
            problems.append(Problem(f"{table}[{index}].name", f"{name!r} is used twice"))
        seen.add(name)
    return problems


def check_references(settings: GatewaySettings) -> list[Problem]:
    problems: list[Problem] = []
    problems += _duplicates((d.name for d in settings.devices), "devices")
    problems += _duplicates((z.name for z in settings.zones), "zones")
    problems += _duplicates((r.name for r in settings.relays), "relays")
    names = (
        ("devices", [d.name for d in settings.devices]),
        ("zones", [z.name for z in settings.zones]),
    )
    for table, named in names:
        for index, name in enumerate(named):
            if name in RESERVED_NAMES:
                problems.append(
                    Problem(
                        f"{table}[{index}].name",
                        f"{name!r} is reserved for the gateway's own ids; choose another",
                    )
                )
    problems += [Problem(path, msg) for path, msg in registry.check_devices(settings.devices)]

    points: dict[str, PointInfo] = {
        point_id(d.name, p.key): p for d in settings.devices for p in d.point_infos()
    }
    devices = {d.name: d for d in settings.devices}

    alarm_ids: list[str] = [relay_fault_id(r.name) for r in settings.relays]
    alarm_ids += [device_comm_id(w.device) for w in settings.watchdogs]
    for i, dog in enumerate(settings.watchdogs):
        if dog.device not in devices:
            problems.append(Problem(f"watchdogs[{i}].device", f"unknown device {dog.device!r}"))
            continue
        for key_name in ("heartbeat", "timeout_point"):
            key = getattr(dog, key_name)
            info = points.get(point_id(dog.device, key)) if key else None
            if key and (info is None or info.binary or not info.writable):
                problems.append(
                    Problem(
                        f"watchdogs[{i}].{key_name}",
                        f"{key!r} is not a writable register of {dog.device!r}",
                    )
                )
    for z, zone in enumerate(settings.zones):
        keys: set[str] = set()
        watched = [
            (f"zones[{z}].thresholds[{t}]", c.point, c.key, False)
            for t, c in enumerate(zone.thresholds)
        ]
        watched += [
            (f"zones[{z}].inputs[{i}]", c.point, c.name, True) for i, c in enumerate(zone.inputs)
        ]
        for path, point, key, wants_binary in watched:
            info = points.get(point)
            if info is None:
                problems.append(
                    Problem(f"{path}.point", f"unknown point {point!r}{_known(points)}")
                )
            elif info.binary != wants_binary:
                need = "an input needs a binary point" if wants_binary else "limits need a number"
                problems.append(Problem(f"{path}.point", f"{point!r}: {need}"))
            if key in keys:
                problems.append(
                    Problem(f"{path}.name", f"{key!r} is used twice in zone {zone.name!r}")
                )
            keys.add(key)
        alarm_ids += [a for spec in zone.threshold_specs({}) for a in spec.alarm_ids()]
        alarm_ids += [a for spec in zone.input_specs() for a in spec.alarm_ids()]

    for r, relay in enumerate(settings.relays):
        device = devices.get(relay.device)
        if device is None:
            problems.append(Problem(f"relays[{r}].device", f"unknown device {relay.device!r}"))
            continue
        info = points.get(point_id(relay.device, relay.point))
        if info is None or not (info.binary and info.writable):
            problems.append(
                Problem(
                    f"relays[{r}].point",
                    f"{relay.point!r} is not a coil of device {relay.device!r}",
                )
            )

    patterns = [(f"alarms.latching[{i}]", p) for i, p in enumerate(settings.alarms.latching)]
    for i, rule in enumerate(settings.alarms.suppress):
        patterns += [(f"alarms.suppress[{i}].alarms[{j}]", p) for j, p in enumerate(rule.alarms)]
        patterns += [
            (f"alarms.suppress[{i}].while_active[{j}]", p) for j, p in enumerate(rule.while_active)
        ]
    for path, pattern in patterns:
        if not any(fnmatchcase(a, pattern) for a in alarm_ids):
            problems.append(Problem(path, f"{pattern!r} matches no alarm"))

    relays = {r.name for r in settings.relays}
    for r, relay in enumerate(settings.relays):
        for f, feedback in enumerate(relay.feedback):
            info = points.get(feedback.point)
            if info is None or not info.binary:
                problems.append(
                    Problem(
                        f"relays[{r}].feedback[{f}].point",
                        f"{feedback.point!r} is not a binary point",
                    )
                )

    def check_patterns(path: str, patterns: Sequence[str]) -> None:
        for i, pattern in enumerate(patterns):
            if not any(fnmatchcase(a, pattern) for a in alarm_ids):
                problems.append(Problem(f"{path}[{i}]", f"{pattern!r} matches no alarm"))

    def check_relay(path: str, name: str) -> None:
        if name not in relays:
            problems.append(Problem(path, f"unknown relay {name!r}"))

    for e, effect in enumerate(settings.effects):
        check_relay(f"effects[{e}].relay", effect.relay)
        check_patterns(f"effects[{e}].when", effect.when)
    problems += _duplicates((row.name for row in settings.matrix), "matrix")
    for m, row in enumerate(settings.matrix):
        check_patterns(f"matrix[{m}].causes", row.causes)
        check_patterns(f"matrix[{m}].abort", row.abort)
        for x, action in enumerate(row.effects):
            check_relay(f"matrix[{m}].effects[{x}].relay", action.relay)
    for i, lock in enumerate(settings.interlocks):
        check_relay(f"interlocks[{i}].relay", lock.relay)
        check_patterns(f"interlocks[{i}].inhibit", lock.inhibit)
        for p, permit in enumerate(lock.permit):
            check_relay(f"interlocks[{i}].permit[{p}].relay", permit.relay)
    return problems


def _known(points: dict[str, PointInfo]) -> str:
    if not points:
        return " (no device has points)"
    names = sorted(points)
    more = f", ... {len(names) - 6} more" if len(names) > 6 else ""
    return f" (known: {', '.join(names[:6])}{more})"

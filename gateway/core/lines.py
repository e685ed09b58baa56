"""Shared Modbus lines as the gateway sees them: which devices feed safety rows, and each
line's load for the status, the metrics and the log.

A device feeds a safety row when one of its points is the point of an alarm that matches a
cause of a cause-and-effect matrix row (``rules.matrix``: causes are alarm id patterns;
each ``AlarmDefinition`` names the point it watches). Such a device keeps its poll rate on
an overrun line (``drivers/modbus_schedule.py``) and its polls go first on the line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from fnmatch import fnmatchcase

from drivers.modbus_line import LINES, LinePool
from drivers.modbus_load import LineStatus
from rules.alarms import AlarmDefinition
from rules.matrix import RowSpec
from vocab.ids import parse_point_id

_logger = logging.getLogger(__name__)


def safety_devices(rows: Iterable[RowSpec], definitions: Iterable[AlarmDefinition]) -> set[str]:
    """Names of the devices whose points feed a cause of any of ``rows``."""
    causes = [pattern for row in rows for pattern in row.causes]
    devices: set[str] = set()
    for alarm in definitions:
        if alarm.point is None or not any(fnmatchcase(alarm.id, c) for c in causes):
            continue
        try:
            devices.add(parse_point_id(alarm.point)[0])
        except ValueError:
            continue  # an alarm on a gateway-wide figure, not on a device's point
    return devices


def protect_safety_devices(
    rows: Iterable[RowSpec], definitions: Iterable[AlarmDefinition], pool: LinePool = LINES
) -> set[str]:
    """Tell every shared line which of its devices feed safety rows; the names, sorted in
    the log line."""
    devices = safety_devices(rows, definitions)
    pool.protect(devices)
    if devices:
        _logger.info(
            "devices feeding safety rows keep their poll rate: %s", ", ".join(sorted(devices))
        )
    return devices


def line_status(pool: LinePool = LINES) -> dict[str, LineStatus]:
    """Each shared line's load, by where it is (a serial port or host:port)."""
    return pool.status()


def describe(where: str, line: LineStatus) -> str:
    """One line of ``cellsafe alarm list`` for a shared line, e.g. ``line /dev/ttyUSB0:
    4 devices, polls ask for 125 % of it, OVERRUN: gas-1, fast kept; hvac every 3.0 s``."""
    head = (
        f"line {where}: {len(line['devices'])} devices, polls ask for "
        f"{100 * line['load']:.0f} % of it"
    )
    if not line["overrun"]:
        return f"{head} ({100 * line['capacity']:.0f} % available)"
    stretched = ", ".join(f"{d} every {s:g} s" for d, s in line["stretched"].items())
    return f"{head}, OVERRUN: {', '.join(line['protected'])} kept; {stretched or 'none stretched'}"

"""Who is on shift at a given moment, in the site's time zone (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.config.notify import WEEKDAYS, ShiftConfig


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def covers(shift: ShiftConfig, local: datetime) -> bool:
    """Whether ``shift`` holds at the site-local time ``local``. A shift whose end is at
    or before its start runs past midnight: its hours after midnight belong to the day
    after one of its ``days``."""
    start, end, now = _minutes(shift.start), _minutes(shift.end), _minutes(local.time())
    today = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local - timedelta(days=1)).weekday()]
    if start < end:
        return today in shift.days and start <= now < end
    return (today in shift.days and now >= start) or (yesterday in shift.days and now < end)


def on_shift(shifts: Mapping[str, ShiftConfig], ts: float, zone: ZoneInfo) -> list[str]:
    """The people on shift at Unix time ``ts``, in escalation order: the first of each
    shift that holds, then the second of each, and so on, each person once."""
    local = datetime.fromtimestamp(ts, zone)
    lists = [s.people for s in shifts.values() if covers(s, local)]
    people: list[str] = []
    for rank in range(max((len(p) for p in lists), default=0)):
        for listed in lists:
            if rank < len(listed) and listed[rank] not in people:
                people.append(listed[rank])
    return people

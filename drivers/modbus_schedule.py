"""Line scheduling: which polls keep their rate when a shared line cannot carry them all.

A serial line carries one request at a time, so the polls of all units on it share one
budget: each poll of a device holds the line for ``cost`` seconds (its requests' frames,
gaps and, for a unit that does not answer, its timeouts), and asks for it every
``interval`` seconds. The line's load is the sum of ``cost / interval``, the fraction of
each second the line is busy. Above ``capacity`` (``TARGET_LOAD`` by default: a line run
at 100 % has no room left for a relay's read-back or a retry) the line is overrun.

When it is, the protected polls keep their configured interval: those of devices that
feed safety rows (a cause of a cause-and-effect matrix row), and those with the line's
shortest interval. The others share what is left, every interval stretched by one
factor, so that their load fits. If the protected polls alone overrun the line, they
still keep their rate (a safety input is never slowed by the gateway) and the rest get
``FLOOR`` of the capacity between them.

Pure: no I/O, no clock. Times are in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TARGET_LOAD = 0.9  # fraction of the line's time the polls may take
FLOOR = 0.1  # share of the capacity left to stretched polls when protected ones take it all
HYSTERESIS = 0.95  # an overrun ends once the load falls below this fraction of capacity


@dataclass(frozen=True, slots=True)
class PollDemand:
    """One device's polls on a line: every ``interval`` s, holding it ``cost`` s."""

    device: str
    interval: float
    cost: float
    safety: bool = False

    @property
    def load(self) -> float:
        return self.cost / self.interval


@dataclass(frozen=True, slots=True)
class LinePlan:
    """What the line gets: ``intervals`` by device (seconds); ``load``, the fraction of
    the line's time all polls at their configured rate would take; ``capacity``; whether
    it is ``overrun``; the ``protected`` devices and the ``stretched`` ones, whose
    intervals are ``stretch`` times their configured ones (1.0: none)."""

    intervals: Mapping[str, float]
    load: float
    capacity: float
    overrun: bool = False
    protected: tuple[str, ...] = ()
    stretched: tuple[str, ...] = ()
    stretch: float = 1.0


def plan_line(
    demands: Sequence[PollDemand],
    capacity: float = TARGET_LOAD,
    was_overrun: bool = False,
) -> LinePlan:
    """The intervals for ``demands`` on one line of ``capacity`` (fraction of its time).

    ``was_overrun``: the line's last plan was overrun; it stays so until the load falls
    below ``HYSTERESIS * capacity``, so that a load near the limit does not flap.
    Raises ``ValueError`` for a non-positive interval, a negative cost or capacity.
    """
    if not 0 < capacity <= 1:
        raise ValueError(f"capacity must be in (0, 1], got {capacity}")
    for d in demands:
        if d.interval <= 0 or d.cost < 0:
            raise ValueError(f"{d.device}: interval must be > 0 and cost >= 0")
    intervals = {d.device: d.interval for d in demands}
    load = sum(d.load for d in demands)
    limit = capacity * HYSTERESIS if was_overrun else capacity
    if not demands or load <= limit:
        return LinePlan(intervals, load, capacity)
    shortest = min(d.interval for d in demands)
    protected = [d for d in demands if d.safety or d.interval == shortest]
    rest = [d for d in demands if not (d.safety or d.interval == shortest)]
    left = max(capacity - sum(d.load for d in protected), FLOOR * capacity)
    rest_load = sum(d.load for d in rest)
    factor = max(1.0, rest_load / left)
    for d in rest:
        intervals[d.device] = d.interval * factor
    return LinePlan(
        intervals,
        load,
        capacity,
        overrun=True,
        protected=tuple(d.device for d in protected),
        stretched=tuple(d.device for d in rest) if factor > 1.0 else (),
        stretch=factor,
    )

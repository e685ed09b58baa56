"""The polls on one shared Modbus line, their measured cost and their current plan.

name: modbus_load
mode: state kept per line (``drivers.modbus_line.ModbusLine.load``), plans from the pure
``drivers.modbus_schedule``

Each device on the line is added with its configured interval and a first estimate of
what a poll costs (seconds of line time, from ``drivers.modbus_timing``); the driver then
reports every poll's real duration. A change of the overrun state is logged once.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TypedDict

from drivers.modbus_schedule import TARGET_LOAD, LinePlan, PollDemand, plan_line

_logger = logging.getLogger("drivers.modbus_line")  # one logger for everything on a line


class LineStatus(TypedDict):
    """One shared line in the gateway's status: ``load`` is the fraction of the line's time
    all its polls at their configured rate would take, ``capacity`` the fraction they may
    take (``modbus_schedule.TARGET_LOAD``); while ``overrun``, the ``stretched`` devices
    poll every so many seconds (by name), ``stretch`` times their configured interval."""

    devices: list[str]
    load: float
    capacity: float
    overrun: bool
    protected: list[str]
    stretched: dict[str, float]
    stretch: float


class LineLoad:
    """The polls on one line and their plan: who keeps its rate, who is stretched.

    Each device is ``add``-ed with its configured interval and an estimate of what a poll
    costs (seconds of line time); ``measured`` replaces the estimate with a moving
    average of real poll durations, so that a unit that only times out costs what it
    really costs. The plan is made again on every change; a change of the overrun state
    is logged once (warning when it starts, info when it ends).
    """

    SMOOTHING = 0.2  # weight of the newest measurement in the moving average

    def __init__(self, where: str, capacity: float = TARGET_LOAD) -> None:
        self.where = where
        self.capacity = capacity
        self._demands: dict[str, PollDemand] = {}
        self._safety: set[str] = set()
        self.plan = LinePlan({}, 0.0, capacity)

    def add(self, device: str, interval: float, cost: float) -> None:
        self._demands[device] = PollDemand(device, interval, cost, device in self._safety)
        self._replan()

    def remove(self, device: str) -> None:
        if self._demands.pop(device, None) is not None:
            self._replan()

    def protect(self, devices: set[str]) -> None:
        """Mark which devices feed safety rows: they keep their rate."""
        self._safety = set(devices)
        for name, demand in self._demands.items():
            self._demands[name] = dataclasses.replace(demand, safety=name in devices)
        self._replan()

    def measured(self, device: str, seconds: float) -> None:
        demand = self._demands.get(device)
        if demand is None:
            return
        cost = demand.cost + self.SMOOTHING * (seconds - demand.cost)
        self._demands[device] = dataclasses.replace(demand, cost=cost)
        self._replan()

    def urgent(self, device: str) -> bool:
        """Whether ``device``'s polls go first on the line: always for a device feeding a
        safety row, and for every protected one while the line is overrun."""
        demand = self._demands.get(device)
        return (demand is not None and demand.safety) or device in self.plan.protected

    def interval(self, device: str, configured: float) -> float:
        """Seconds between ``device``'s polls in the current plan."""
        return self.plan.intervals.get(device, configured)

    def stretch(self, device: str) -> float:
        """The plan's interval for ``device`` over its configured one (1.0: kept)."""
        demand = self._demands.get(device)
        if demand is None:
            return 1.0
        return self.plan.intervals.get(device, demand.interval) / demand.interval

    def status(self) -> LineStatus:
        plan = self.plan
        return LineStatus(
            devices=sorted(self._demands),
            load=round(plan.load, 4),
            capacity=plan.capacity,
            overrun=plan.overrun,
            protected=sorted(plan.protected),
            stretched={d: round(plan.intervals[d], 3) for d in sorted(plan.stretched)},
            stretch=round(plan.stretch, 3),
        )

    def _replan(self) -> None:
        before = self.plan
        self.plan = plan = plan_line(list(self._demands.values()), self.capacity, before.overrun)
        if plan.overrun and not before.overrun:
            _logger.warning(
                "modbus line %s overrun: polls ask for %.0f %% of the line, %.0f %% "
                "available; %s keep their rate, %s stretched %.1f times",
                self.where,
                100 * plan.load,
                100 * plan.capacity,
                ", ".join(plan.protected) or "none",
                ", ".join(plan.stretched) or "none",
                plan.stretch,
            )
        elif before.overrun and not plan.overrun:
            _logger.info(
                "modbus line %s no longer overrun: polls ask for %.0f %% of the line",
                self.where,
                100 * plan.load,
            )

"""Who is told what, and when: the decisions of notification, pure and on an explicit clock.

``Planner.on_event(event, now)`` takes one event record of the contract (``docs/events.md``)
and ``Planner.tick(now)`` the passing of time (``now`` in seconds on the steady clock);
both return the ``Notice``s due. Nothing here sends, sleeps or reads a clock.

- **Raise**: an ``alarm.raised`` that a route matches (zone pattern and priority, the first
  route that matches decides) is told to the first person on shift and the route's
  ``also``, after ``action_window`` seconds, so that the relays and matrix rows it set off
  (``actuator.switched``/``failed`` naming it among their causes, ``safety.tripped`` with it
  among the votes) are said in the same message: what the gateway did.
- **Escalation**: still unacknowledged ``escalate_after`` seconds after the raise (and
  again after each further period), the next person on shift not yet told is told. An
  acknowledgement, a clear, a shelve, a suppression or taking it out of service ends that.
- **Clear**: everyone told of the alarm hears that it cleared.
- **Flood** (ISA-18.2: more alarms than people can handle): more than ``flood_count``
  raises within ``flood_window`` seconds, or the alarm manager's own ``alarm.flood``
  ``started``, and raises are no longer told one by one: one summary (how many, by zone
  and priority) goes out, and another when the flood is over. Alarms raised in a flood are
  not escalated one by one.
- **Chattering**: an ``alarm.chattering`` is told once; that alarm's raises and clears are
  not told again until it has been quiet for the manager's chatter window.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Literal

from gateway.config.notify import RouteConfig
from vocab.ids import GATEWAY

NoticeKind = Literal["raised", "escalated", "cleared", "chattering", "flood", "flood_over"]
Rota = Callable[[float], list[str]]  # Unix time -> the people on shift, in escalation order

_ENDS_ESCALATION = {
    "alarm.acknowledged",
    "alarm.shelved",
    "alarm.suppressed",
    "alarm.out_of_service",
    "alarm.reset",
}


@dataclass(frozen=True, slots=True)
class Action:
    """What the gateway did: a relay switched (or failed to), a matrix row tripped."""

    kind: Literal["relay", "relay_failed", "row"]
    name: str
    state: str = ""  # "on" / "off" for a relay


@dataclass(frozen=True, slots=True)
class FloodSummary:
    raised: int
    by_zone: dict[str, int]
    by_priority: dict[str, int]
    window_s: float


@dataclass(frozen=True, slots=True)
class Notice:
    """One message to ``people``. ``alarm`` is the body of the alarm event (id, zone,
    value, limit, unit, priority, ...), ``ts`` the Unix time the message speaks of."""

    kind: NoticeKind
    people: tuple[str, ...]
    ts: float
    alarm: Mapping[str, Any] = field(default_factory=dict)
    actions: tuple[Action, ...] = ()
    step: int = 0  # escalation step: 1 for the first escalation
    flood: FloodSummary | None = None

    @property
    def key(self) -> str:
        """A short name for logs and records: ``raised:<alarm id>``, ``flood``, ..."""
        alarm_id = self.alarm.get("id")
        return f"{self.kind}:{alarm_id}" if alarm_id else self.kind


@dataclass(slots=True)
class _Tracked:
    alarm: dict[str, Any]
    route: RouteConfig
    raised_at: float  # steady
    raised_ts: float  # Unix time of the raise
    due: float | None  # steady time the raise is told; None once told
    told: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    step: int = 0
    escalating: bool = True


@dataclass(slots=True)
class _Chatter:
    window: float
    last_raise: float


def parse_ts(text: object) -> float | None:
    """An event's ``ts`` (ISO 8601, UTC) as Unix time."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Planner:
    def __init__(
        self,
        routes: Sequence[RouteConfig],
        rota: Rota,
        *,
        action_window: float = 3.0,
        flood_count: int = 10,
        flood_window: float = 60.0,
    ) -> None:
        self.routes = list(routes)
        self.rota = rota
        self.action_window = action_window
        self.flood_count = flood_count
        self.flood_window = flood_window
        self.tracked: dict[str, _Tracked] = {}
        self._chatter: dict[str, _Chatter] = {}
        self._raises: deque[float] = deque()  # steady times of routed raises
        self._manager_flood = False
        self._flooding = False
        self._flood_due: float | None = None  # steady time the flood summary is told
        self._flood_people: list[str] = []
        self._flood_raised: Counter[tuple[str, str]] = Counter()  # (zone, priority)
        self._last_ts = 0.0  # Unix time of the latest event, for summaries
        self._last_now = 0.0

    @property
    def flooding(self) -> bool:
        return self._flooding

    def route(self, alarm: Mapping[str, Any]) -> RouteConfig | None:
        zone = str(alarm.get("zone") or GATEWAY)
        priority = alarm.get("priority")
        for route in self.routes:
            if priority in route.priorities and any(fnmatchcase(zone, z) for z in route.zones):
                return route
        return None

    def _wall(self, now: float) -> float:
        """Unix time at steady ``now``, reckoned from the latest event."""
        return self._last_ts + (now - self._last_now)

    def on_event(self, event: Mapping[str, Any], now: float) -> list[Notice]:
        """Take one event record; returns the notices due at once (clears, chattering)."""
        ts = parse_ts(event.get("ts"))
        if ts is not None:
            self._last_ts, self._last_now = ts, now
        else:
            ts = self._wall(now)
        kind = str(event.get("type", ""))
        notices: list[Notice] = []
        if kind == "alarm.raised":
            self._raised(dict(event.get("alarm") or {}), ts, now)
        elif kind == "alarm.cleared":
            notices += self._cleared(event.get("alarm") or {}, ts)
        elif kind in _ENDS_ESCALATION:
            tracked = self.tracked.get(str((event.get("alarm") or {}).get("id")))
            if tracked is not None:
                tracked.escalating = False
        elif kind == "alarm.chattering":
            notices += self._chattering(event.get("alarm") or {}, ts, now)
        elif kind == "alarm.flood":
            state = (event.get("flood") or {}).get("state")
            self._manager_flood = state == "started"
            notices += self._update_flood(now)
        elif kind in ("actuator.switched", "actuator.failed"):
            body = event.get("actuator") or {}
            action = Action(
                "relay" if kind == "actuator.switched" else "relay_failed",
                str(body.get("name", "")),
                str(body.get("state", "")),
            )
            self._attach(action, body.get("causes") or [], now)
        elif kind == "safety.tripped":
            body = event.get("safety") or {}
            self._attach(Action("row", str(body.get("row", ""))), body.get("votes") or [], now)
        return notices

    def tick(self, now: float) -> list[Notice]:
        """Raises whose ``action_window`` is over, escalations due, flood summaries."""
        notices = self._update_flood(now)
        for alarm_id, tracked in list(self.tracked.items()):
            if tracked.due is not None and now >= tracked.due:
                tracked.due = None
                if self._flooding:
                    self._count_flood(tracked)
                    del self.tracked[alarm_id]
                    continue
                notices += self._tell_raise(tracked)
            elif tracked.due is None and tracked.escalating and not self._flooding:
                notices += self._escalate(tracked, now)
        if self._flood_due is not None and now >= self._flood_due:
            self._flood_due = None
            notices.append(self._flood_notice("flood", now))
        notices = [n for n in notices if n.people]
        for alarm_id in [a for a, c in self._chatter.items() if now - c.last_raise > c.window]:
            del self._chatter[alarm_id]
        return notices

    def _raised(self, alarm: dict[str, Any], ts: float, now: float) -> None:
        alarm_id = str(alarm.get("id"))
        route = self.route(alarm)
        if route is None:
            return
        chatter = self._chatter.get(alarm_id)
        if chatter is not None:
            chatter.last_raise = now
            return
        self._raises.append(now)
        self.tracked[alarm_id] = _Tracked(
            alarm=alarm,
            route=route,
            raised_at=now,
            raised_ts=ts,
            due=now + self.action_window,
            escalating="escalate" in route.on,
        )
        self._update_flood(now)

    def _cleared(self, alarm: Mapping[str, Any], ts: float) -> list[Notice]:
        alarm_id = str(alarm.get("id"))
        tracked = self.tracked.pop(alarm_id, None)
        if tracked is None or alarm_id in self._chatter:
            return []
        if tracked.due is not None:
            tracked.due = None
            if self._flooding:
                self._count_flood(tracked)
                return []
            notices = self._tell_raise(tracked)  # raised and cleared within the window
        else:
            notices = []
        if "clear" not in tracked.route.on or not tracked.told:
            return notices
        body = {**tracked.alarm, **alarm}
        return [*notices, Notice("cleared", tuple(tracked.told), ts, body)]

    def _chattering(self, alarm: Mapping[str, Any], ts: float, now: float) -> list[Notice]:
        alarm_id = str(alarm.get("id"))
        if alarm_id in self._chatter:
            return []
        window = float(alarm.get("window_s") or self.flood_window)
        self._chatter[alarm_id] = _Chatter(window, now)
        tracked = self.tracked.pop(alarm_id, None)
        body: dict[str, Any] = {**(tracked.alarm if tracked else {}), **alarm}
        route = tracked.route if tracked else None
        if route is None:
            return []
        people = tuple(tracked.told) if tracked and tracked.told else self._first(route, ts)
        return [Notice("chattering", people, ts, body)] if people else []

    def _tell_raise(self, tracked: _Tracked) -> list[Notice]:
        if "raise" not in tracked.route.on:
            return []
        people = self._first(tracked.route, tracked.raised_ts)
        tracked.told = list(people)
        if not people:
            return []
        return [
            Notice(
                "raised", people, tracked.raised_ts, tracked.alarm, actions=tuple(tracked.actions)
            )
        ]

    def _first(self, route: RouteConfig, ts: float) -> tuple[str, ...]:
        shift = self.rota(ts)
        people = shift[:1] + [p for p in route.also if p not in shift[:1]]
        return tuple(people)

    def _escalate(self, tracked: _Tracked, now: float) -> list[Notice]:
        if now < tracked.raised_at + tracked.route.escalate_after * (tracked.step + 1):
            return []
        tracked.step += 1
        ts = tracked.raised_ts + (now - tracked.raised_at)
        nextone = [p for p in self.rota(ts) if p not in tracked.told][:1]
        if not nextone:
            tracked.escalating = False  # nobody left on the list
            return []
        tracked.told += nextone
        return [
            Notice(
                "escalated",
                tuple(nextone),
                ts,
                tracked.alarm,
                actions=tuple(tracked.actions),
                step=tracked.step,
            )
        ]

    def _attach(self, action: Action, causes: Sequence[object], now: float) -> None:
        for cause in causes:
            tracked = self.tracked.get(str(cause))
            if (
                tracked is not None
                and now <= tracked.raised_at + self.action_window
                and action not in tracked.actions
            ):
                tracked.actions.append(action)

    def _count_flood(self, tracked: _Tracked) -> None:
        alarm = tracked.alarm
        self._flood_raised[(str(alarm.get("zone") or GATEWAY), str(alarm.get("priority")))] += 1
        for person in self._first(tracked.route, tracked.raised_ts):
            if person not in self._flood_people:
                self._flood_people.append(person)

    def _update_flood(self, now: float) -> list[Notice]:
        while self._raises and self._raises[0] <= now - self.flood_window:
            self._raises.popleft()
        floods = self._manager_flood or len(self._raises) > self.flood_count
        if floods and not self._flooding:
            self._flooding = True
            self._flood_raised.clear()
            self._flood_people = []
            self._flood_due = now + self.action_window
            return []
        if not floods and self._flooding:
            self._flooding = False
            notices = []
            if self._flood_due is not None:  # over before its summary was told
                self._flood_due = None
                notices.append(self._flood_notice("flood", now))
            notices.append(self._flood_notice("flood_over", now))
            return [n for n in notices if n.people]
        return []

    def _flood_notice(self, kind: NoticeKind, now: float) -> Notice:
        zones: Counter[str] = Counter()
        priorities: Counter[str] = Counter()
        for (zone, priority), count in self._flood_raised.items():
            zones[zone] += count
            priorities[priority] += count
        summary = FloodSummary(
            raised=sum(self._flood_raised.values()),
            by_zone=dict(zones.most_common()),
            by_priority=dict(priorities.most_common()),
            window_s=self.flood_window,
        )
        return Notice(kind, tuple(self._flood_people), self._wall(now), flood=summary)

"""The alarm lifecycle after ISA-18.2 / IEC 62682: what an operator sees, and why.

Detection (``rules/thresholds.py``) says only whether an alarm's *condition* holds. This
module adds what people do with alarms: acknowledge, reset a latch, shelve for a while,
take out of service, and the suppression a design foresees. The state shown is derived
from a small record, so no sequence of inputs can put an alarm in a state that has no name:

    out of service > shelved > suppressed > active (unack / acked)
    > returned unacknowledged > latched > normal

Every change of shown state is an event naming what caused it. Safety effects follow the
condition, not the shown state: shelving or suppressing hides an alarm from people, it
does not stop a fan. Only taking an alarm out of service (a sensor in maintenance) also
takes it out of the effects.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from vocab.events import Event

Priority = Literal["low", "medium", "high", "critical"]
Actor = Literal["process", "operator", "timer", "design", "system"]


class AlarmState(enum.Enum):
    NORMAL = "normal"
    UNACK = "unack"
    ACKED = "acked"
    RTN_UNACK = "rtn_unack"
    LATCHED = "latched"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"
    OUT_OF_SERVICE = "out_of_service"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmDefinition:
    id: str
    priority: Priority = "medium"
    latching: bool = False
    zone: str | None = None
    point: str | None = None
    level: str = ""
    unit: str | None = None
    suppressed_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Cause:
    actor: Actor
    name: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        # By hand: dataclasses.asdict deep-copies, a fifth of an alarm event's cost.
        fields = (("actor", self.actor), ("name", self.name), ("reason", self.reason))
        return {k: v for k, v in fields if v}


PROCESS = Cause("process")
TIMER = Cause("timer", reason="shelve expired")


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """What survives a restart. Everything shown is derived from these fields."""

    condition: bool = False
    acked: bool = True
    latched: bool = False
    shelved_until: float | None = None
    suppressed: bool = False
    out_of_service: bool = False
    value: float | None = None
    limit: float | None = None
    message: str = ""
    since: float = 0.0

    @property
    def state(self) -> AlarmState:
        if self.out_of_service:
            return AlarmState.OUT_OF_SERVICE
        if self.shelved_until is not None:
            return AlarmState.SHELVED
        if self.suppressed:
            return AlarmState.SUPPRESSED
        if self.condition:
            return AlarmState.ACKED if self.acked else AlarmState.UNACK
        if not self.acked:
            return AlarmState.RTN_UNACK
        if self.latched:
            return AlarmState.LATCHED
        return AlarmState.NORMAL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlarmRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True, kw_only=True)
class ConditionChange:
    """Detection's word: the condition of ``alarm_id`` now holds, or no longer does."""

    alarm_id: str
    active: bool
    ts: float
    value: float | None = None
    limit: float | None = None
    message: str = ""


class CommandRefused(Exception):
    """An operator command that does not apply; the text says why, for the reply."""


@dataclass(slots=True)
class Outcome:
    events: list[Event] = field(default_factory=list)
    changed: dict[str, AlarmRecord] = field(default_factory=dict)

    def extend(self, other: Outcome) -> None:
        self.events.extend(other.events)
        self.changed.update(other.changed)


# An event type per change of shown state, by the state entered.
_EVENT_FOR: dict[AlarmState, str] = {
    AlarmState.UNACK: "alarm.raised",
    AlarmState.ACKED: "alarm.acknowledged",
    AlarmState.RTN_UNACK: "alarm.cleared",
    AlarmState.NORMAL: "alarm.cleared",
    AlarmState.LATCHED: "alarm.cleared",
    AlarmState.SHELVED: "alarm.shelved",
    AlarmState.SUPPRESSED: "alarm.suppressed",
    AlarmState.OUT_OF_SERVICE: "alarm.out_of_service",
}


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class FloodPolicy:
    """Chattering, floods and the longest shelve: the options of ``[alarms]``, declared once."""

    chatter_count: int = Field(
        default=3, ge=2, description="count of raises within chatter_window that mark it chattering"
    )
    chatter_window: float = Field(default=60.0, gt=0, description="seconds over which raises count")
    flood_count: int = Field(
        default=10,
        ge=1,
        description="count of site-wide raises in flood_window above which it floods",
    )
    flood_window: float = Field(
        default=600.0, gt=0, description="seconds over which a flood counts"
    )
    max_shelve: float = Field(default=8 * 3600.0, gt=0, description="seconds: the longest shelve")


class AlarmManager:
    def __init__(
        self,
        definitions: Iterable[AlarmDefinition],
        records: Mapping[str, AlarmRecord] | None = None,
        policy: FloodPolicy | None = None,
    ) -> None:
        self.definitions = {d.id: d for d in definitions}
        saved = records or {}
        self.records = {i: saved.get(i, AlarmRecord()) for i in self.definitions}
        self.policy = policy or FloodPolicy()
        self._raises: dict[str, deque[float]] = {i: deque() for i in self.definitions}
        self._chattering: set[str] = set()
        self._site_raises: deque[float] = deque()
        self._flooding = False
        self.counters = {"raised": 0, "chattering": 0, "floods": 0}

    # -- what others read ------------------------------------------------------------

    def state(self, alarm_id: str) -> AlarmState:
        return self.records[alarm_id].state

    def conditions(self) -> set[str]:
        """Alarms whose condition holds, as the effects should see them."""
        return {i for i, r in self.records.items() if r.condition and not r.out_of_service}

    def annunciated(self) -> dict[str, AlarmState]:
        """Alarms a person should see now: everything not normal."""
        return {i: r.state for i, r in self.records.items() if r.state is not AlarmState.NORMAL}

    @property
    def flooding(self) -> bool:
        return self._flooding

    @property
    def chattering(self) -> frozenset[str]:
        return frozenset(self._chattering)

    # -- inputs ------------------------------------------------------------------------

    def on_conditions(self, changes: Iterable[ConditionChange]) -> Outcome:
        outcome = Outcome()
        latest: float | None = None
        for change in changes:
            latest = change.ts if latest is None else max(latest, change.ts)
            if change.alarm_id not in self.records:
                continue
            old = self.records[change.alarm_id]
            if old.condition == change.active:
                continue
            new = replace(
                old,
                condition=change.active,
                value=change.value,
                limit=change.limit,
                message=change.message,
                since=change.ts,
            )
            if change.active and not old.out_of_service and old.shelved_until is None:
                new = replace(new, acked=False, latched=False)
            elif not change.active and self.definitions[change.alarm_id].latching:
                new = replace(new, latched=True)
            outcome.extend(self._commit(change.alarm_id, old, new, PROCESS, change.ts))
            if change.active:
                outcome.extend(self._count_raise(change.alarm_id, change.ts))
        if latest is not None:
            outcome.extend(self._apply_suppression(latest))
        return outcome

    def tick(self, now: float) -> Outcome:
        """Expire shelves and let chatter and flood flags fall back when quiet."""
        outcome = Outcome()
        for alarm_id, record in self.records.items():
            if record.shelved_until is not None and record.shelved_until <= now:
                outcome.extend(self._return(alarm_id, TIMER, now, "shelved_until"))
        outcome.extend(self._age_counters(now))
        return outcome

    def acknowledge(self, alarm_id: str, cause: Cause, now: float) -> Outcome:
        old = self._record(alarm_id)
        if old.state not in (AlarmState.UNACK, AlarmState.RTN_UNACK):
            raise CommandRefused(f"{alarm_id} has nothing to acknowledge: it is {old.state.value}")
        return self._commit(alarm_id, old, replace(old, acked=True), cause, now)

    def reset(self, alarm_id: str, cause: Cause, now: float) -> Outcome:
        old = self._record(alarm_id)
        if old.state is not AlarmState.LATCHED:
            raise CommandRefused(f"{alarm_id} is not latched: it is {old.state.value}")
        return self._commit(alarm_id, old, replace(old, latched=False), cause, now)

    def shelve(self, alarm_id: str, cause: Cause, now: float, duration: float) -> Outcome:
        old = self._record(alarm_id)
        if old.state in (AlarmState.OUT_OF_SERVICE, AlarmState.SHELVED):
            raise CommandRefused(f"{alarm_id} cannot be shelved: it is {old.state.value}")
        if not 0 < duration <= self.policy.max_shelve:
            raise CommandRefused(
                f"shelve duration must be 0..{self.policy.max_shelve:g} s, got {duration:g}"
            )
        return self._commit(alarm_id, old, replace(old, shelved_until=now + duration), cause, now)

    def unshelve(self, alarm_id: str, cause: Cause, now: float) -> Outcome:
        if self._record(alarm_id).shelved_until is None:
            raise CommandRefused(f"{alarm_id} is not shelved")
        return self._return(alarm_id, cause, now, "shelved_until")

    def remove_from_service(self, alarm_id: str, cause: Cause, now: float) -> Outcome:
        old = self._record(alarm_id)
        if old.out_of_service:
            raise CommandRefused(f"{alarm_id} is already out of service")
        return self._commit(alarm_id, old, replace(old, out_of_service=True), cause, now)

    def return_to_service(self, alarm_id: str, cause: Cause, now: float) -> Outcome:
        if not self._record(alarm_id).out_of_service:
            raise CommandRefused(f"{alarm_id} is in service")
        return self._return(alarm_id, cause, now, "out_of_service")

    # -- internals ---------------------------------------------------------------------

    def _record(self, alarm_id: str) -> AlarmRecord:
        try:
            return self.records[alarm_id]
        except KeyError:
            raise CommandRefused(f"unknown alarm {alarm_id!r}") from None

    def _return(self, alarm_id: str, cause: Cause, now: float, flag: str) -> Outcome:
        """Back from shelving or out of service: an active condition is annunciated anew."""
        old = self.records[alarm_id]
        cleared: dict[str, Any] = {flag: None if flag == "shelved_until" else False}
        new = replace(old, **cleared)
        if new.shelved_until is None and not new.out_of_service:
            new = replace(new, acked=not new.condition, latched=False)
        outcome = self._commit(alarm_id, old, new, cause, now, returned=True)
        outcome.extend(self._apply_suppression(now))
        return outcome

    def _apply_suppression(self, now: float) -> Outcome:
        outcome = Outcome()
        active = {i for i, r in self.records.items() if r.condition}
        for alarm_id, definition in self.definitions.items():
            if not definition.suppressed_by:
                continue
            should = any(
                fnmatchcase(a, p) for a in active if a != alarm_id for p in definition.suppressed_by
            )
            old = self.records[alarm_id]
            if old.suppressed != should:
                cause = Cause(
                    "design", reason="suppressed by design" if should else "suppression ended"
                )
                new = replace(old, suppressed=should)
                if not should:
                    new = replace(new, acked=not new.condition)
                outcome.extend(self._commit(alarm_id, old, new, cause, now, returned=not should))
        return outcome

    def _commit(
        self,
        alarm_id: str,
        old: AlarmRecord,
        new: AlarmRecord,
        cause: Cause,
        now: float,
        returned: bool = False,
    ) -> Outcome:
        self.records[alarm_id] = new
        outcome = Outcome(changed={alarm_id: new})
        if new.state is old.state:
            return outcome  # e.g. a condition change while shelved: nothing to show
        event_type = _EVENT_FOR[new.state]
        if returned:
            event_type = {
                AlarmState.SHELVED: "alarm.unshelved",
                AlarmState.OUT_OF_SERVICE: "alarm.returned_to_service",
                AlarmState.SUPPRESSED: "alarm.unsuppressed",
            }.get(old.state, event_type)
        elif old.state is AlarmState.LATCHED and new.state is AlarmState.NORMAL:
            event_type = "alarm.reset"
        elif old.state is AlarmState.RTN_UNACK and new.state in (
            AlarmState.NORMAL,
            AlarmState.LATCHED,
        ):
            event_type = "alarm.acknowledged"
        outcome.events.append(self._event(event_type, alarm_id, old, new, cause, now))
        return outcome

    def _event(
        self,
        event_type: str,
        alarm_id: str,
        old: AlarmRecord,
        new: AlarmRecord,
        cause: Cause,
        now: float,
    ) -> Event:
        d = self.definitions[alarm_id]
        body: dict[str, Any] = {
            "id": alarm_id,
            "state": new.state.value,
            "previous_state": old.state.value,
            "condition": new.condition,
            "acked": new.acked,
            "priority": d.priority,
            "level": d.level,
            "zone": d.zone,
            "point": d.point,
            "value": new.value,
            "limit": new.limit,
            "unit": d.unit,
            "message": new.message,
            "by": cause.as_dict(),
        }
        if new.shelved_until is not None:
            body["shelved_until"] = new.shelved_until
        return Event(event_type, {"alarm": body})  # stamped by the wall clock

    def _count_raise(self, alarm_id: str, now: float) -> Outcome:
        self.counters["raised"] += 1
        outcome = Outcome()
        raises = self._raises[alarm_id]
        raises.append(now)
        self._site_raises.append(now)
        # Only this alarm's window and the site's: aging every alarm on every raise made a
        # flood of n raises cost n x (alarms configured); ``tick`` ages the others.
        outcome.extend(self._age_counters(now, (alarm_id,)))
        if len(raises) >= self.policy.chatter_count and alarm_id not in self._chattering:
            self._chattering.add(alarm_id)
            self.counters["chattering"] += 1
            outcome.events.append(
                Event(
                    "alarm.chattering",
                    {
                        "alarm": {
                            "id": alarm_id,
                            "raised": len(raises),
                            "window_s": self.policy.chatter_window,
                        }
                    },
                )
            )
        if len(self._site_raises) > self.policy.flood_count and not self._flooding:
            self._flooding = True
            self.counters["floods"] += 1
            outcome.events.append(
                Event(
                    "alarm.flood",
                    {
                        "flood": {
                            "state": "started",
                            "raised": len(self._site_raises),
                            "window_s": self.policy.flood_window,
                        }
                    },
                )
            )
        return outcome

    def _age_counters(self, now: float, alarm_ids: Iterable[str] | None = None) -> Outcome:
        """Drop raises older than the chatter window (of ``alarm_ids``, all when None) and
        the flood window; clear the chatter and flood flags that no longer hold."""
        outcome = Outcome()
        for alarm_id in self._raises if alarm_ids is None else alarm_ids:
            raises = self._raises[alarm_id]
            while raises and raises[0] <= now - self.policy.chatter_window:
                raises.popleft()
            if alarm_id in self._chattering and len(raises) < self.policy.chatter_count:
                self._chattering.discard(alarm_id)
        while self._site_raises and self._site_raises[0] <= now - self.policy.flood_window:
            self._site_raises.popleft()
        if self._flooding and len(self._site_raises) <= self.policy.flood_count:
            self._flooding = False
            outcome.events.append(
                Event(
                    "alarm.flood",
                    {
                        "flood": {
                            "state": "ended",
                            "raised": len(self._site_raises),
                            "window_s": self.policy.flood_window,
                        }
                    },
                )
            )
        return outcome

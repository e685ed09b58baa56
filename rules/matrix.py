"""The cause-and-effect matrix: which outputs the alarms call for, as fire-and-gas does it.

A row has causes (alarm id patterns) and a vote: the row trips when at least ``vote``
distinct alarms matching its causes hold their condition, so that in a 2ooN row one faulty
detector cannot open a deluge valve. Each effect of a row drives one relay, at once or
after a ``delay`` (a pre-discharge warning period) that an abort input or an authorised
abort command holds back; it may ``latch`` until the row is reset, and it stays for at
least ``min_on`` seconds once driven.

Interlocks then have the last word before a relay is asked to leave its resting state: an
``inhibit`` alarm (a maintenance key switch) blocks it, a ``permit`` (another relay
verified in a given state, e.g. the extraction fan in off-gas mode before deluge) makes it
wait. A manual override, with an expiry and a reason, beats them all. Every decision that
is not plain - a trip, an abort, a block, an override - is an event saying who or what.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from rules.alarms import Cause, CommandRefused
from vocab.events import Event
from vocab.ids import NAME_PATTERN


@dataclass(frozen=True, slots=True)
class RelayDemand:
    state: bool
    causes: tuple[str, ...]


# Each option below is declared once, here: these classes are also the TOML tables
# (``[[matrix]]``, ``[[matrix.effects]]``, ``[[interlocks]]``), so a misspelt key is an error.
_TABLE = ConfigDict(extra="forbid")


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class EffectSpec:
    relay: str = Field(description="the relay this effect drives")
    state: bool = Field(default=True, description="the state it is driven to")
    delay: float = Field(
        default=0.0,
        ge=0,
        le=3600,
        description="seconds after the trip before it is driven; abortable",
    )
    latch: bool = Field(default=False, description="stays driven until the row is reset")
    min_on: float = Field(
        default=0.0, ge=0, le=86400, description="seconds it stays driven at least"
    )


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class RowSpec:
    """A row trips when ``vote`` distinct alarms matching ``causes`` hold (1ooN, 2ooN...)."""

    name: str = Field(pattern=NAME_PATTERN, max_length=64, description="the row's name")
    causes: tuple[str, ...] = Field(min_length=1, description="alarm id patterns, '*' allowed")
    effects: tuple[EffectSpec, ...] = Field(min_length=1, description="what the row drives")
    vote: int = Field(
        default=1, ge=1, le=32, description="count of distinct causes that trip the row"
    )
    abort: tuple[str, ...] = Field(
        default=(), description="alarm id patterns that hold delayed effects"
    )


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class Permit:
    relay: str = Field(description="the other relay")
    state: bool = Field(description="the state it must be verified in")


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class InterlockSpec:
    """Before ``relay`` leaves its resting state: no ``inhibit`` alarm, every permit met."""

    relay: str = Field(description="the relay this interlock guards")
    inhibit: tuple[str, ...] = Field(default=(), description="alarm id patterns that block it")
    permit: tuple[Permit, ...] = Field(default=(), description="relays verified in a state first")


@dataclass(frozen=True, slots=True)
class Override:
    state: bool
    until: float
    cause: Cause


@dataclass(slots=True)
class _Row:
    spec: RowSpec
    votes: tuple[str, ...] = ()
    countdown_from: float | None = None
    latched: bool = False
    aborted_by: Cause | None = None
    abort_shown: bool = False
    fired: dict[int, float] = field(default_factory=dict)


def _matches(alarm: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(alarm, p) for p in patterns)


def _word(state: bool) -> str:
    return "on" if state else "off"


class CauseEffectMatrix:
    def __init__(
        self,
        rows: Iterable[RowSpec],
        interlocks: Iterable[InterlockSpec],
        resting: Mapping[str, bool],
    ) -> None:
        self._rows = {r.name: _Row(r) for r in rows}
        self._interlocks: dict[str, list[InterlockSpec]] = {}
        for lock in interlocks:
            self._interlocks.setdefault(lock.relay, []).append(lock)
        self._resting = dict(resting)
        self._overrides: dict[str, Override] = {}
        self._blocked: dict[str, str] = {}

    # -- what others read ------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "rows": {
                name: {
                    "tripped": row.countdown_from is not None or bool(row.fired),
                    "votes": list(row.votes),
                    "latched": row.latched,
                    "aborted": row.aborted_by is not None,
                }
                for name, row in self._rows.items()
            },
            "overrides": {
                relay: {"state": _word(o.state), "until": o.until, "by": o.cause.as_dict()}
                for relay, o in self._overrides.items()
            },
            "blocked": dict(self._blocked),
        }

    def export(self) -> dict[str, Any]:
        """What must survive a restart: tripped rows (so that a restart repeats no
        ``safety.tripped`` for the same incident), latches, operator aborts, overrides.
        Times are Unix seconds: a restart may come after a reboot."""
        return {
            "tripped": {
                n: {"since": r.countdown_from, "votes": list(r.votes), "fired": r.fired}
                for n, r in self._rows.items()
                if r.countdown_from is not None
            },
            "latched": sorted(n for n, r in self._rows.items() if r.latched),
            "aborted": {
                n: r.aborted_by.as_dict() for n, r in self._rows.items() if r.aborted_by is not None
            },
            "overrides": {
                relay: {"state": o.state, "until": o.until, "by": o.cause.as_dict()}
                for relay, o in self._overrides.items()
            },
        }

    def restore(self, saved: Mapping[str, Any], now: float) -> None:
        for name, tripped in saved.get("tripped", {}).items():
            row = self._rows.get(name)
            if row is not None:
                row.countdown_from = float(tripped["since"])
                row.votes = tuple(tripped["votes"])
                row.fired = {int(i): float(t) for i, t in tripped["fired"].items()}
        for name in saved.get("latched", []):
            row = self._rows.get(name)
            if row is not None:
                row.latched = True
                # Held as fired, so that a latched release stays released after a restart.
                row.fired = {i: now for i, e in enumerate(row.spec.effects) if e.latch} | row.fired
        for name, by in saved.get("aborted", {}).items():
            if name in self._rows:
                self._rows[name].aborted_by = Cause(**by)
        for relay, o in saved.get("overrides", {}).items():
            if relay in self._resting and o["until"] > now:
                self._overrides[relay] = Override(
                    bool(o["state"]), float(o["until"]), Cause(**o["by"])
                )

    # -- evaluation ------------------------------------------------------------------

    def evaluate(
        self, active: Set[str], now: float, actual: Mapping[str, bool | None]
    ) -> tuple[dict[str, RelayDemand], list[Event]]:
        events: list[Event] = []
        for relay, expiring in list(self._overrides.items()):
            if expiring.until <= now:
                del self._overrides[relay]
                events.append(
                    self._event(
                        "safety.override_ended",
                        relay=relay,
                        by={"actor": "timer", "reason": "override expired"},
                    )
                )
        demands = {relay: RelayDemand(state, ()) for relay, state in self._resting.items()}
        claimed: set[str] = set()
        for row in self._rows.values():
            for effect, causes in self._row(row, active, now, events):
                if effect.relay not in claimed:
                    demands[effect.relay] = RelayDemand(effect.state, causes)
                    claimed.add(effect.relay)
        for relay, demand in list(demands.items()):
            forced = self._overrides.get(relay)
            if forced is not None:
                demands[relay] = RelayDemand(forced.state, (f"override by {forced.cause.name}",))
                continue
            blocked_by = self._blocking(relay, demand, active, actual)
            if blocked_by != self._blocked.get(relay, ""):
                if blocked_by:
                    self._blocked[relay] = blocked_by
                    events.append(
                        self._event(
                            "safety.blocked",
                            relay=relay,
                            state=_word(demand.state),
                            blocked_by=blocked_by,
                        )
                    )
                else:
                    del self._blocked[relay]
                    events.append(self._event("safety.unblocked", relay=relay))
            if blocked_by:
                demands[relay] = RelayDemand(self._resting[relay], ())
        return demands, events

    def _row(
        self, row: _Row, active: Set[str], now: float, events: list[Event]
    ) -> list[tuple[EffectSpec, tuple[str, ...]]]:
        spec = row.spec
        votes = tuple(sorted(a for a in active if _matches(a, spec.causes)))
        tripped = len(votes) >= spec.vote
        if tripped and row.countdown_from is None:
            row.countdown_from = now
            events.append(
                self._event("safety.tripped", row=spec.name, votes=list(votes), vote=spec.vote)
            )
        elif not tripped and row.countdown_from is not None:
            row.countdown_from = None
            row.aborted_by = None  # an abort belongs to its incident, not to the next one
            events.append(self._event("safety.cleared", row=spec.name))
        row.votes = votes if tripped else ()

        abort_alarms = sorted(a for a in active if _matches(a, spec.abort))
        aborting = tripped and (bool(abort_alarms) or row.aborted_by is not None)
        waiting = any(e.delay > 0 and i not in row.fired for i, e in enumerate(spec.effects))
        if aborting and waiting and not row.abort_shown:
            row.abort_shown = True
            by = (
                row.aborted_by.as_dict()
                if row.aborted_by
                else {"actor": "process", "reason": ", ".join(abort_alarms)}
            )
            events.append(self._event("safety.aborted", row=spec.name, by=by))
        if row.abort_shown and not aborting:
            row.abort_shown = False
            row.countdown_from = now if tripped else None  # a released abort starts anew
            events.append(self._event("safety.resumed", row=spec.name))

        driven: list[tuple[EffectSpec, tuple[str, ...]]] = []
        for index, effect in enumerate(spec.effects):
            # An abort holds back what has not been released yet; it never stops a
            # discharge already under way.
            due = (
                tripped
                and row.countdown_from is not None
                and (
                    index in row.fired
                    or effect.delay == 0
                    or (not aborting and now - row.countdown_from >= effect.delay)
                )
            )
            if due and index not in row.fired:
                row.fired[index] = now
                if effect.latch:
                    row.latched = True
            held = index in row.fired and (
                (effect.latch and row.latched) or now - row.fired[index] < effect.min_on
            )
            if due or held:
                driven.append((effect, votes or (f"{spec.name} (held)",)))
            else:
                row.fired.pop(index, None)
        return driven

    def _blocking(
        self, relay: str, demand: RelayDemand, active: Set[str], actual: Mapping[str, bool | None]
    ) -> str:
        if demand.state == self._resting.get(relay, demand.state):
            return ""
        for lock in self._interlocks.get(relay, ()):
            inhibits = sorted(a for a in active if _matches(a, lock.inhibit))
            if inhibits:
                return f"inhibited by {', '.join(inhibits)}"
            for permit in lock.permit:
                if actual.get(permit.relay) is not permit.state:
                    return f"waiting for {permit.relay} to be verified {_word(permit.state)}"
        return ""

    # -- commands --------------------------------------------------------------------

    def override(self, relay: str, state: bool, until: float, cause: Cause, now: float) -> Event:
        if relay not in self._resting:
            raise CommandRefused(f"unknown relay {relay!r}")
        if not cause.reason:
            raise CommandRefused("an override needs a reason")
        self._overrides[relay] = Override(state, until, cause)
        return self._event(
            "safety.override", relay=relay, state=_word(state), until=until, by=cause.as_dict()
        )

    def end_override(self, relay: str, cause: Cause, now: float) -> Event:
        if self._overrides.pop(relay, None) is None:
            raise CommandRefused(f"{relay!r} has no override")
        return self._event("safety.override_ended", relay=relay, by=cause.as_dict())

    def abort(self, row: str, cause: Cause, now: float) -> Event:
        target = self._target(row)
        if target.countdown_from is None:
            raise CommandRefused(f"row {row!r} has not tripped: nothing to abort")
        target.aborted_by = cause
        return self._event("safety.abort_requested", row=row, by=cause.as_dict())

    def resume(self, row: str, cause: Cause, now: float) -> Event:
        target = self._target(row)
        if target.aborted_by is None:
            raise CommandRefused(f"row {row!r} is not aborted by a command")
        target.aborted_by = None
        return self._event("safety.resume_requested", row=row, by=cause.as_dict())

    def reset(self, row: str, cause: Cause, now: float) -> Event:
        target = self._target(row)
        if not target.latched:
            raise CommandRefused(f"row {row!r} is not latched")
        if target.votes:
            raise CommandRefused(f"row {row!r} still has its causes: {', '.join(target.votes)}")
        target.latched = False
        target.aborted_by = None
        return self._event("safety.reset", row=row, by=cause.as_dict())

    def _target(self, row: str) -> _Row:
        try:
            return self._rows[row]
        except KeyError:
            raise CommandRefused(f"unknown matrix row {row!r}") from None

    @staticmethod
    def _event(kind: str, **body: Any) -> Event:
        return Event(kind, {"safety": body})  # stamped by the wall clock

"""Which state each relay should be in, given the alarms active now.

An effect drives its relay while any alarm matching one of its patterns is active; a relay
no effect claims returns to its resting state. When two effects claim one relay with
different states, the one listed first in the configuration wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True, slots=True, kw_only=True)
class EffectSpec:
    patterns: tuple[str, ...]
    relay: str
    state: bool


@dataclass(frozen=True, slots=True)
class RelayDemand:
    state: bool
    causes: tuple[str, ...]


class EffectPlanner:
    def __init__(self, effects: Iterable[EffectSpec], resting: dict[str, bool]) -> None:
        self._effects = list(effects)
        self._resting = dict(resting)

    def demands(self, active_alarms: Set[str]) -> dict[str, RelayDemand]:
        result = {relay: RelayDemand(state, ()) for relay, state in self._resting.items()}
        claimed: set[str] = set()
        for effect in self._effects:
            if effect.relay in claimed:
                continue
            causes = tuple(
                sorted(a for a in active_alarms if any(fnmatchcase(a, p) for p in effect.patterns))
            )
            if causes:
                result[effect.relay] = RelayDemand(effect.state, causes)
                claimed.add(effect.relay)
        return result

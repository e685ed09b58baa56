"""The condition bus: actuators report conditions (a relay that does not obey, a relay
module that is lost), the rules pipeline turns them into alarms.

It lets relays and watchdogs be built before the pipeline that drives them, so that
construction follows the data one way: actuators -> bus -> pipeline -> actuators' demands.
"""

from __future__ import annotations

from collections.abc import Callable

from rules.alarms import ConditionChange

ConditionHandler = Callable[[ConditionChange], None]


class ConditionBus:
    def __init__(self) -> None:
        self._handlers: list[ConditionHandler] = []

    def subscribe(self, handler: ConditionHandler) -> None:
        self._handlers.append(handler)

    def __call__(self, change: ConditionChange) -> None:
        for handler in self._handlers:
            handler(change)

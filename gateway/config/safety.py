"""Config tables for the safety outputs: the cause-and-effect matrix and its interlocks.

The options are declared once, on the runtime types in ``rules/matrix.py`` and
``actuators/watchdog.py``: a ``[[matrix]]`` table is a ``RowSpec``. Interlocks and
watchdogs are the same types with ``to_spec()``, the call the gateway makes of each table.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.dataclasses import dataclass

from actuators.watchdog import WatchdogSpec
from rules.matrix import InterlockSpec

_TABLE = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class InterlockConfig(InterlockSpec):
    def to_spec(self) -> InterlockSpec:
        return self


@dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class WatchdogConfig(WatchdogSpec):
    def to_spec(self) -> WatchdogSpec:
        return self


class SafetySection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_override: float = Field(
        8 * 3600.0, gt=0, description="seconds: the longest manual override"
    )

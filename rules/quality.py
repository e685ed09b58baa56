"""How reliable a point's readings are: gaps between good readings, and the share of bad.

Shared by thresholds and binary inputs. A bad reading restarts no delay: a gap between
good readings is bridged up to ``max_gap`` seconds. A point whose readings are bad more
than ``bad_share`` of the time over ``bad_window`` seconds is unreliable, which is a fault
of the point even while good readings come in between: a sensor on a noisy link is an
alarm, not an invisible sensor. Times are on the steady clock (``vocab.clock``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

# Fewer readings than this in bad_window are too few to call a link unreliable.
MIN_READINGS_FOR_SHARE = 10


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class ReadingChecks:
    max_gap: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="seconds between good readings that a delay or the rate fit bridges;"
        " a longer gap restarts them",
    )
    bad_share: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="fraction of bad readings in bad_window that makes the point unreliable,"
        " a fault; 1: never",
    )
    bad_window: float = Field(
        default=60.0, ge=5, le=86400, description="seconds over which bad_share is counted"
    )


@dataclass(slots=True)
class QualityWindow:
    """The share of bad readings over the last ``bad_window`` seconds."""

    checks: ReadingChecks
    _readings: deque[tuple[float, bool]] = field(default_factory=deque)
    _bad: int = 0
    _unreliable: bool = False

    def add(self, t: float, bad: bool) -> None:
        self._readings.append((t, bad))
        self._bad += bad
        while self._readings[0][0] < t - self.checks.bad_window:
            self._bad -= self._readings.popleft()[1]

    def unreliable(self) -> str | None:
        """Why the point is unreliable, or None; with hysteresis: it becomes so above
        ``bad_share`` and is well again below half of it."""
        share = self.checks.bad_share
        readings = len(self._readings)
        # A point with no good reading at all is not unreliable but lost: fault_delay
        # decides that, as it always did.
        if readings >= MIN_READINGS_FOR_SHARE and (self._bad < readings or self._unreliable):
            limit = share / 2 if self._unreliable else share
            self._unreliable = self._bad / readings > limit
        if not self._unreliable:
            return None
        return (
            f"unreliable: {self._bad} of {readings} readings bad in the last "
            f"{self.checks.bad_window:g} s (limit {share:.0%})"
        )

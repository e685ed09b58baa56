"""A sample is one reading of one point: the unit that drivers hand to the rules."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# Numbers, binary states and short text (a panel's zone text, a status word).
Value = float | bool | str


class Quality(enum.Enum):
    """OPC UA's three severities of a reading (OPC 10000-4, 7.39 StatusCode). ``UNCERTAIN``
    carries a value and the reason it may be wrong; the rules use only ``GOOD`` readings."""

    GOOD = "good"
    BAD = "bad"
    UNCERTAIN = "uncertain"


GOOD = Quality.GOOD


@dataclass(slots=True)
class Sample:
    """``point`` is the stable point id ``"<device>.<key>"``; ``ts`` is Unix time in seconds
    (the stamp shown to people and the WMS); ``mono`` is the same instant on the gateway's
    steady clock (``vocab.clock.steady``), which every duration is measured on.
    ``source_ts`` is the device's own stamp of the value (OPC UA's SourceTimestamp), Unix
    seconds, when the device gives one; it is kept beside ours, never instead of it.

    A bad sample carries no value, only the reason, so that nothing downstream can
    mistake a failed read for a reading. Samples are never changed once made; the class
    is not ``frozen`` only because a frozen dataclass takes three times as long to build,
    and the pollers build tens of thousands a second.
    """

    point: str
    value: Value | None
    quality: Quality
    ts: float
    mono: float
    reason: str | None = None
    source_ts: float | None = None

    @classmethod
    def good(cls, point: str, value: Value, ts: float, mono: float) -> Sample:
        return cls(point, value, GOOD, ts, mono)

    @classmethod
    def bad(cls, point: str, ts: float, mono: float, reason: str) -> Sample:
        return cls(point, None, Quality.BAD, ts, mono, reason)

    @property
    def is_good(self) -> bool:
        return self.quality is Quality.GOOD


class SampleHandler(Protocol):
    def __call__(self, samples: Sequence[Sample], /) -> None: ...

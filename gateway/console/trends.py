"""Recent samples per point, in memory, for the trend charts and the device-health page.

A ``SampleHandler`` on the gateway's sample bus: each point keeps its last ``size``
samples in a ring (``collections.deque``; the oldest falls out), the last sample of any
quality and the last good one. Only numbers and booleans are charted; text values are
kept as the latest value only. Nothing is stored on disk: the durable record of what
happened is the event log, and long-term series belong to a time-series database.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vocab.samples import Sample


@dataclass(slots=True)
class PointTrend:
    """``ts``: Unix seconds (the samples' stamps); ``values``: None for a bad sample."""

    ts: deque[float]
    values: deque[float | None]
    last: Sample | None = None
    last_good: Sample | None = None


class Trends:
    def __init__(self, size: int) -> None:
        self.size = size
        self._points: dict[str, PointTrend] = {}
        self.dirty = False  # a sample arrived since the last push

    def __call__(self, samples: Sequence[Sample], /) -> None:
        for sample in samples:
            trend = self._points.get(sample.point)
            if trend is None:
                trend = self._points[sample.point] = PointTrend(
                    deque(maxlen=self.size), deque(maxlen=self.size)
                )
            value = sample.value
            number = float(value) if isinstance(value, int | float) and sample.is_good else None
            trend.ts.append(sample.ts)
            trend.values.append(number)
            trend.last = sample
            if sample.is_good:
                trend.last_good = sample
        if samples:
            self.dirty = True

    def points(self) -> list[str]:
        return sorted(self._points)

    def series(self, point: str) -> dict[str, Any] | None:
        """``{"point", "ts": [...], "values": [...]}``, oldest first; None for an unknown point."""
        trend = self._points.get(point)
        if trend is None:
            return None
        return {"point": point, "ts": list(trend.ts), "values": list(trend.values)}

    def latest(self) -> dict[str, dict[str, Any]]:
        """Per point: value (None if bad), quality, reason, ts and the last good ts."""
        out: dict[str, dict[str, Any]] = {}
        for point, trend in self._points.items():
            last = trend.last
            if last is None:
                continue
            out[point] = {
                "value": last.value if last.is_good else None,
                "quality": last.quality.value,
                "reason": last.reason,
                "ts": last.ts,
                "last_good_ts": trend.last_good.ts if trend.last_good else None,
            }
        return out

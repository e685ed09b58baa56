"""A reader that sends only garbage is a fault to alarm, not a stream of rejected scans.

A reader on the wrong baud rate, parity or framing turns everything it sends into bytes
that decode to nothing: a few unreadable reads a second, for as long as it stays so.
Reported one by one, each would be a ``stock.rejected`` event in the durable log (and at
the WMS) and a reject beep. ``GarbledReads`` decides, per reader, which reads keep their
own event:

- ``limit`` unreadable reads (reason ``unreadable``) within ``window`` seconds make the
  reader *garbled*; the read that reaches the limit is the first one not reported alone.
  Fewer (a person scanning a damaged label now and then) each keep their event and beep.
- While garbled, the reader's unusable reads (``unreadable``, and ``unknown_location``:
  garbage that happens to be printable) give no event and no signal each. They are
  counted, and one summary ``stock.rejected`` (reason ``unreadable``, ``count`` = the
  reads it stands for, ``data`` = the last of them) is given every ``summary_every``
  seconds while the state lasts, and when it ends.
- The state ends with the first usable read (any other outcome: the reader decodes
  again) or after ``window`` seconds without an unusable read (``quiet``).
- Outside the state, an unknown location is a person's bad scan: it keeps its event and
  does not count towards the limit.

Each change of state is a ``Change`` with ``alarm`` True or False: the caller raises or
clears ``device.<reader>.garbled`` with its message. Times are monotonic seconds
(``vocab.clock.steady()``), passed in; stamps (``ts``) are Unix seconds, for the events.
Nothing here does I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from vocab.events import Event

Kind = Literal["unreadable", "unknown", "usable"]
SUMMARY_EVERY = 300.0  # seconds between summaries while a reader stays garbled
HINT = "baud rate, parity or framing set wrong, or a faulty cable?"


@dataclass(frozen=True, slots=True)
class Change:
    """What one read (or the passing of time) means for a reader.

    ``keep``: the read's own event and signal stand. ``summary``: a summary event to store.
    ``alarm``: True to raise, False to clear ``device.<reader>.garbled``, None to leave it;
    ``message`` says why."""

    keep: bool = True
    summary: Event | None = None
    alarm: bool | None = None
    message: str = ""


KEEP = Change()


@dataclass(slots=True)
class _Reader:
    limit: int
    window: float
    recent: deque[float] = field(default_factory=deque)  # monotonic times of unreadable reads
    garbled: bool = False
    count: int = 0  # unusable reads since the last summary
    total: int = 0  # unusable reads since the state began
    began: float = 0.0  # monotonic
    first_ts: float = 0.0  # Unix time of the first read the next summary stands for
    last_ts: float = 0.0
    last_bad: float = 0.0  # monotonic
    last_summary: float = 0.0  # monotonic
    data: str = ""


class GarbledReads:
    """``limits``: reader name -> ``(limit, window)`` (reads, seconds). A reader not
    named keeps every event (no limit)."""

    def __init__(
        self, limits: Mapping[str, tuple[int, float]], summary_every: float = SUMMARY_EVERY
    ) -> None:
        self._readers = {name: _Reader(n, w) for name, (n, w) in limits.items()}
        self._every = summary_every

    def garbled(self, reader: str) -> bool:
        r = self._readers.get(reader)
        return r is not None and r.garbled

    def read(self, reader: str, now: float, ts: float, kind: Kind, data: str) -> Change:
        """One read of ``reader`` handled at ``now`` (monotonic), read at ``ts`` (Unix)."""
        r = self._readers.get(reader)
        if r is None:
            return KEEP
        if kind == "usable":
            r.recent.clear()
            if not r.garbled:
                return KEEP
            return self._end(reader, r, f"reader {reader} gives usable reads again")
        if not r.garbled:
            if kind == "unknown":
                return KEEP
            r.recent.append(now)
            while r.recent and r.recent[0] <= now - r.window:
                r.recent.popleft()
            if len(r.recent) < r.limit:
                return KEEP
            self._begin(r, now)
            self._count(r, now, ts, data)
            message = (
                f"reader {reader} sends only unreadable reads: {r.limit} within"
                f" {r.window:g} s; they are counted, not reported one by one ({HINT})"
            )
            return Change(keep=False, alarm=True, message=message[:500])
        self._count(r, now, ts, data)
        if now - r.last_summary >= self._every:
            r.last_summary = now
            return Change(keep=False, summary=self._summary(reader, r))
        return Change(keep=False)

    def resume(self, reader: str, now: float) -> None:
        """``reader`` was garbled before a restart (its alarm was restored active): it is
        garbled again from ``now``, until a usable read or ``window`` quiet seconds."""
        r = self._readers.get(reader)
        if r is not None:
            self._begin(r, now)

    def deadline(self) -> float | None:
        """The monotonic time ``quiet`` next has work, or None while no reader is garbled."""
        times = [r.last_bad + r.window for r in self._readers.values() if r.garbled]
        return min(times) if times else None

    def quiet(self, now: float) -> list[tuple[str, Change]]:
        """Ends the state of each reader without an unusable read for ``window`` seconds."""
        return [
            (name, self._end(name, r, f"reader {name} quiet for {r.window:g} s"))
            for name, r in self._readers.items()
            if r.garbled and now - r.last_bad >= r.window
        ]

    def flush(self) -> list[Event]:
        """The summaries of reads counted and not yet reported (at shutdown)."""
        events = []
        for name, r in self._readers.items():
            if r.garbled and r.count:
                events.append(self._summary(name, r))
        return events

    # -- inside ----------------------------------------------------------------------

    @staticmethod
    def _begin(r: _Reader, now: float) -> None:
        r.recent.clear()
        r.garbled, r.count, r.total = True, 0, 0
        r.began = r.last_bad = r.last_summary = now

    @staticmethod
    def _count(r: _Reader, now: float, ts: float, data: str) -> None:
        if r.count == 0:
            r.first_ts = ts
        r.count += 1
        r.total += 1
        r.last_bad, r.last_ts, r.data = now, ts, data

    def _end(self, reader: str, r: _Reader, why: str) -> Change:
        summary = self._summary(reader, r) if r.count else None
        total, lasted = r.total, r.last_bad - r.began
        r.garbled, r.count, r.total = False, 0, 0
        r.recent.clear()
        message = f"{why}: {total} unusable reads in {lasted:.0f} s were counted"
        return Change(keep=True, summary=summary, alarm=False, message=message[:500])

    def _summary(self, reader: str, r: _Reader) -> Event:
        n, span = r.count, max(r.last_ts - r.first_ts, 0.0)
        body = {
            "scanner": reader,
            "reason": "unreadable",
            "message": (
                f"{n} unusable reads in {span:.0f} s, counted and not reported one by one:"
                f" the reader sends what cannot be decoded ({HINT})"
            ),
            "data": r.data[:128],
            "count": n,
        }
        r.count = 0
        return Event("stock.rejected", body, r.last_ts)

"""Time: durations on a monotonic clock, stamps from the wall clock.

``steady()`` is the gateway's clock for every duration (delays, fault and stale timers,
shelve and override expiry, rate-of-rise fits, matrix countdowns): the monotonic clock,
shifted once, when the process starts, to read like Unix time. A step of the wall clock
(NTP, an operator) moves neither a timer nor a window. Across a restart the shift is
taken anew, so a deadline kept on disk (a shelve, an override, a countdown) is bridged by
the wall clock: a step while the gateway was down shortens or lengthens it by the step.

``time.time()`` only stamps: samples' ``ts`` and events' ``ts``, as the contract shows.
"""

from __future__ import annotations

import time

_SHIFT = time.time() - time.monotonic()


def steady() -> float:
    """Seconds on the monotonic clock, reading like Unix time at process start."""
    return time.monotonic() + _SHIFT

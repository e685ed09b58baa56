"""One log line per change of a device's health, with counts, not one per failed request.

A flapping device used to write a warning for every failed reply, about 200 lines a
minute. ``DeviceHealth`` is told the outcome of each poll (requests answered, requests
failed, the last reason) and says only when the device is lost (a poll with no answer at
all), degraded (some requests failed), or back (healthy again: a poll with answers after a
loss, or ``quiet`` seconds without a failed request after a degradation). Times are on
the steady clock (``vocab.clock``).
"""

from __future__ import annotations

import enum
import logging

_logger = logging.getLogger("drivers.health")


class Health(enum.Enum):
    OK = "ok"
    DEGRADED = "degraded"
    LOST = "lost"


class DeviceHealth:
    def __init__(self, device: str, quiet: float = 60.0) -> None:
        self.device = device
        self._field = {"device": device}  # a journal field (gateway/cli/journal.py)
        self.state = Health.OK
        self._quiet = quiet
        self._since = 0.0  # when the current state began
        self._last_failure = 0.0
        self._answered = 0  # requests in the current state
        self._failed = 0

    def polled(self, answered: int, failed: int, reason: str | None, now: float) -> None:
        self._answered += answered
        self._failed += failed
        if failed:
            self._last_failure = now
        if answered == 0 and failed:
            self._become(Health.LOST, now, reason)
        elif self.state is Health.LOST:
            self._become(Health.DEGRADED if failed else Health.OK, now, reason)
        elif failed and self.state is Health.OK:
            self._become(Health.DEGRADED, now, reason)
        elif self.state is Health.DEGRADED and now - self._last_failure >= self._quiet:
            self._become(Health.OK, now, None)

    def _become(self, state: Health, now: float, reason: str | None) -> None:
        if state is self.state:
            return
        before, seconds = self.state, now - self._since
        counts = f"{self._failed} of {self._answered + self._failed} requests failed"
        if state is Health.LOST:
            _logger.warning("device %s lost: %s", self.device, reason, extra=self._field)
        elif before is Health.LOST:
            _logger.info(
                "device %s back after %.0f s without an answer",
                self.device,
                seconds,
                extra=self._field,
            )
        elif state is Health.DEGRADED:
            _logger.warning("device %s degraded: %s", self.device, reason, extra=self._field)
        else:
            _logger.info(
                "device %s healthy again: %s in %.0f s degraded",
                self.device,
                counts,
                seconds,
                extra=self._field,
            )
        self.state, self._since = state, now
        self._answered = self._failed = 0

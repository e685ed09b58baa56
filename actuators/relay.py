"""A relay on a writable binary point, every command verified by reading it back.

The relay keeps only the latest demand: if the rules change their mind while a command is
being verified, the next command is the newest wish, not a queue of stale ones. A command
counts as done when the coil reads back as commanded within ``verify_timeout`` and every
independent feedback (a contactor's auxiliary contact, an airflow switch) confirms within
its own timeout. Otherwise it is re-sent ``retries`` times; then the relay raises its
fault alarm, saying why, and keeps trying every ``retry_after`` seconds until the output
obeys, which clears it. An idle relay reads its output back as often, to put right what
changed behind its back. A write the link cannot carry (a device reconnecting) does not
use up an attempt at once: it is tried again every ``_WRITE_RETRY`` seconds until the
attempt's ``verify_timeout`` has passed, so a link that flaps for a second costs no
attempt at all.

States here are the output's, not the coil's: with ``trip = "de-energise"`` (wired
de-energise to trip, as a gas-dilution fan should be) "on" means the coil dropped, so a
dead module or a cut wire runs the fan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from drivers.base import Driver, WriteError
from rules.alarms import AlarmDefinition, ConditionChange
from rules.matrix import RelayDemand
from vocab.clock import steady
from vocab.events import Event, EventSink
from vocab.ids import NAME_PATTERN, point_id, relay_fault_id

_logger = logging.getLogger(__name__)

_READBACK_INTERVAL = 0.05  # seconds between read-backs while verifying
_WRITE_RETRY = 0.2  # seconds between writes the link did not carry, within one attempt

PointReader = Callable[[str], Awaitable[bool | None]]


# Each option is declared once, here: these classes are also the ``[[relays]]`` and
# ``[[relays.feedback]]`` tables, so a misspelt key is an error.
_TABLE = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class FeedbackSpec:
    """An independent confirmation: a contactor's auxiliary contact, an airflow switch."""

    point: str = Field(description="'<device>.<key>' of a binary input")
    timeout: float = Field(default=5.0, gt=0, le=600, description="seconds to confirm")
    active_when: bool = Field(default=True, description="its value while the output is on")


@dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class RelaySpec:
    """An output on a writable binary point, e.g. an exhaust fan's contactor coil."""

    name: str = Field(pattern=NAME_PATTERN, max_length=64, description="the relay's name")
    device: str = Field(description="the device that has the coil")
    point: str = Field(description="key of a coil point on that device")
    resting: bool = Field(default=False, description="the state with no cause active")
    trip: Literal["energise", "de-energise"] = Field(
        default="energise",
        description="de-energise: the coil drops to turn the output on (fail-safe)",
    )
    verify_timeout: float = Field(
        default=2.0, gt=0, le=120, description="seconds for the read-back"
    )
    retries: int = Field(
        default=2, ge=0, le=10, description="count of re-sends after a failed verification"
    )
    retry_after: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="seconds between retries once the first attempts failed, "
        "and between read-back checks while idle",
    )
    feedback: tuple[FeedbackSpec, ...] = Field(default=(), description="independent confirmations")
    on_stop: Literal["hold", "safe"] = Field(
        default="hold",
        description="on a clean stop of the gateway: leave it, or drive it to `safe`",
    )
    safe: bool = Field(default=False, description="the output's safe state (on for a dilution fan)")

    @property
    def fault_alarm_id(self) -> str:
        return relay_fault_id(self.name)

    def definitions(self) -> list[AlarmDefinition]:
        return [
            AlarmDefinition(
                id=self.fault_alarm_id,
                priority="high",
                level="fault",
                point=point_id(self.device, self.point),
            )
        ]

    def coil(self, state: bool) -> bool:
        return state if self.trip == "energise" else not state


def _word(state: bool | None) -> str:
    return {True: "on", False: "off", None: "unknown"}[state]


class Relay:
    def __init__(
        self,
        spec: RelaySpec,
        driver: Driver,
        sink: EventSink,
        on_fault: Callable[[ConditionChange], None],
        read_point: PointReader | None = None,
    ) -> None:
        self.spec = spec
        self._driver = driver
        self._sink = sink
        self._on_fault = on_fault
        self._read_point = read_point
        self._demand: RelayDemand | None = None
        self._actual: bool | None = None
        self._faulted = False
        self.verified = 0  # commands confirmed by read-back and feedback, for the metrics
        self.unverified = 0  # commands that were not, after every attempt
        self._wake = asyncio.Event()

    @property
    def state(self) -> bool | None:
        """The last output state confirmed by read-back; ``None`` until one is known."""
        return self._actual

    @property
    def faulted(self) -> bool:
        return self._faulted

    def request(self, demand: RelayDemand) -> None:
        if demand != self._demand:
            self._demand = demand
            self._wake.set()

    async def run(self) -> None:
        # Learn the output's real state first, so that a restart neither re-sends nor
        # reports a command the output already obeys.
        self._actual = await self._read_back()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.spec.retry_after)
            except TimeoutError:
                # Nothing asked of us for a while: look at the output anyway. A module that
                # went to its safe values, was power-cycled or forced by hand is put right.
                # A faulted output is not trusted on its coil alone: it is driven again.
                seen = await self._read_back()
                if not self._faulted:
                    self._actual = seen
            self._wake.clear()
            demand = self._demand
            if demand is None:
                continue
            if demand.state == self._actual:
                self._clear_fault()
                continue
            await self._drive(demand)

    async def stop_safely(self) -> None:
        """On a clean stop: drive the safe state if so configured, one verified attempt."""
        if self.spec.on_stop != "safe" or self._actual == self.spec.safe:
            return
        self._demand = RelayDemand(self.spec.safe, ("gateway stopping",))
        await self._drive(self._demand, attempts=1)

    async def _drive(self, demand: RelayDemand, attempts: int | None = None) -> None:
        failure = ""
        started = time.monotonic()
        tries = attempts or self.spec.retries + 1
        for attempt in range(1, tries + 1):
            if self._demand is not None and self._demand.state != demand.state:
                return  # the rules changed their mind: run() takes the newest demand
            failure = await self._write(demand.state)
            if failure:
                _logger.warning(
                    "relay %s attempt %d: %s",
                    self.spec.name,
                    attempt,
                    failure,
                    extra={"relay": self.spec.name},
                )
                continue
            seen = await self._verify(demand.state)
            # Only a coil and every feedback in agreement count as the output's state.
            self._actual = None if seen == demand.state else seen
            if seen == demand.state:
                failure = await self._confirm_feedback(demand.state)
                if not failure:
                    self._actual = seen
                    self.verified += 1
                    elapsed_ms = round((time.monotonic() - started) * 1000)
                    self._emit(
                        Event("actuator.switched", self._body(demand, attempt, elapsed_ms, True))
                    )
                    self._clear_fault()
                    return
            else:
                failure = (
                    f"read-back shows {_word(seen)} {self.spec.verify_timeout:g} s after "
                    f"commanding {_word(demand.state)}"
                )
            _logger.warning(
                "relay %s attempt %d: %s",
                self.spec.name,
                attempt,
                failure,
                extra={"relay": self.spec.name},
            )
        self.unverified += 1
        if self._faulted:
            return  # already reported; keep trying quietly until the output obeys
        self._faulted = True
        elapsed_ms = round((time.monotonic() - started) * 1000)
        body = self._body(demand, tries, elapsed_ms, False)
        self._emit(Event("actuator.failed", {**body, "error": failure}))
        self._fault(True, f"relay {self.spec.name} does not obey: {failure}")

    async def _write(self, state: bool) -> str:
        """'' once the device took the command, else why it could not, after trying for
        up to ``verify_timeout`` seconds (monotonic)."""
        deadline = time.monotonic() + self.spec.verify_timeout
        while True:
            try:
                await self._driver.write(self.spec.point, self.spec.coil(state))
            except WriteError as err:
                left = deadline - time.monotonic()
                if left <= 0:
                    return f"write not taken within {self.spec.verify_timeout:g} s: {err}"
                await asyncio.sleep(min(_WRITE_RETRY, left))
            else:
                return ""

    async def _verify(self, expected: bool) -> bool | None:
        deadline = time.monotonic() + self.spec.verify_timeout
        seen = await self._read_back()
        while seen != expected and time.monotonic() < deadline:
            await asyncio.sleep(_READBACK_INTERVAL)
            seen = await self._read_back()
        return seen

    async def _confirm_feedback(self, state: bool) -> str:
        """'' when every feedback agrees with ``state`` in time, else what did not."""
        if self._read_point is None:
            return ""
        for feedback in self.spec.feedback:
            expected = feedback.active_when if state else not feedback.active_when
            deadline = time.monotonic() + feedback.timeout
            seen = await self._read_point(feedback.point)
            while seen != expected and time.monotonic() < deadline:
                await asyncio.sleep(_READBACK_INTERVAL * 4)
                seen = await self._read_point(feedback.point)
            if seen != expected:
                return (
                    f"feedback {feedback.point} did not confirm {_word(state)} "
                    f"within {feedback.timeout:g} s"
                )
        return ""

    async def _read_back(self) -> bool | None:
        samples = await self._driver.read([self.spec.point])
        if not samples or not samples[0].is_good:
            return None
        return self.spec.coil(bool(samples[0].value))

    def _clear_fault(self) -> None:
        if not self._faulted:
            return
        self._faulted = False
        self._fault(False, f"relay {self.spec.name} obeys again")

    def _fault(self, active: bool, message: str) -> None:
        self._on_fault(
            ConditionChange(
                alarm_id=self.spec.fault_alarm_id, active=active, ts=steady(), message=message
            )
        )

    def _body(
        self, demand: RelayDemand, attempts: int, elapsed_ms: int, verified: bool
    ) -> dict[str, object]:
        return {
            "actuator": {
                "name": self.spec.name,
                "kind": "relay",
                "point": point_id(self.spec.device, self.spec.point),
                "state": _word(demand.state),
                "resting": demand.state == self.spec.resting,
                "verified": verified,
                "attempts": attempts,
                "elapsed_ms": elapsed_ms,
                "causes": list(demand.causes),
            }
        }

    def _emit(self, *events: Event) -> None:
        self._sink.emit(list(events))

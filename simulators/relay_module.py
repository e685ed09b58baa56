"""The relay module of the simulated warehouse, with what real ones have and what fails.

Coils 0..15 drive outputs; each channel is wired to a zone's exhaust fan or deluge valve,
energise- or de-energise-to-trip. Discrete inputs 0..15 are the contactors' auxiliary
contacts; inputs 16..31 the airflow switches, which close a few seconds after a fan runs.
Holding register 0 is the host watchdog: when the watchdog is armed (register 1, seconds)
and nothing writes register 0 for that long, every coil falls to its safe value, as
Moxa ioLogik or Advantech ADAM modules do on host loss.

Faults on demand: a stuck contact (writes do not move the coil), a dead feedback input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CHANNELS = 16
AIRFLOW_INPUTS = 16  # airflow switch of channel i is discrete input 16 + i


class ChannelSetup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: int = Field(ge=0, lt=CHANNELS)
    zone: str
    output: Literal["fan", "deluge", "other"] = "fan"
    wiring: Literal["energise", "de-energise"] = "energise"
    safe_coil: bool = Field(False, description="the coil value on host loss")


@dataclass(slots=True)
class RelayModule:
    channels: dict[int, ChannelSetup] = field(default_factory=dict)
    coils: list[bool] = field(default_factory=lambda: [False] * CHANNELS)
    stuck: set[int] = field(default_factory=set)
    dead_feedback: set[int] = field(default_factory=set)
    airflow_delay: float = 2.0
    watchdog: float = 0.0
    heartbeat_at: float = field(default_factory=time.monotonic)
    tripped: bool = False
    _running_since: dict[int, float] = field(default_factory=dict)

    def runs(self, channel: int) -> bool:
        """Whether the output of ``channel`` is on, given its coil and its wiring."""
        setup = self.channels.get(channel)
        energised = self.coils[channel]
        return energised if setup is None or setup.wiring == "energise" else not energised

    def write(self, channel: int, value: bool) -> None:
        if 0 <= channel < CHANNELS and channel not in self.stuck:
            self.coils[channel] = value

    def heartbeat(self) -> None:
        self.heartbeat_at = time.monotonic()
        self.tripped = False

    def check_watchdog(self) -> None:
        # Host loss is wall-clock time: the gateway's heartbeat does not speed up with
        # the simulation.
        if self.watchdog <= 0 or self.tripped:
            return
        if time.monotonic() - self.heartbeat_at > self.watchdog:
            self.tripped = True
            for channel in range(CHANNELS):
                setup = self.channels.get(channel)
                self.coils[channel] = setup.safe_coil if setup else False

    def advance(self, elapsed: float) -> None:
        for channel in range(CHANNELS):
            if self.runs(channel):
                self._running_since.setdefault(channel, elapsed)
            else:
                self._running_since.pop(channel, None)

    def _is_fan(self, channel: int) -> bool:
        setup = self.channels.get(channel)
        return setup is None or setup.output == "fan"  # an unmapped channel is a fan

    def inputs(self, elapsed: float) -> list[bool]:
        aux = [self.coils[c] and c not in self.dead_feedback for c in range(CHANNELS)]
        airflow = [
            c not in self.dead_feedback
            and self._is_fan(c)
            and self.runs(c)
            and elapsed - self._running_since.get(c, elapsed) >= self.airflow_delay
            for c in range(AIRFLOW_INPUTS)
        ]
        return aux + airflow

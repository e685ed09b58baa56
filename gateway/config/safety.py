"""Config tables for the safety outputs: the cause-and-effect matrix and its interlocks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from actuators.watchdog import WatchdogSpec
from rules.matrix import EffectSpec, InterlockSpec, RowSpec
from vocab.ids import NAME_PATTERN


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatrixEffectConfig(_Table):
    relay: str
    state: bool = True
    delay: float = Field(0.0, ge=0, le=3600, description="seconds after the trip; abortable")
    latch: bool = Field(False, description="stays until the row is reset")
    min_on: float = Field(0.0, ge=0, le=86400, description="seconds it stays at least")

    def to_spec(self) -> EffectSpec:
        return EffectSpec(
            relay=self.relay,
            state=self.state,
            delay=self.delay,
            latch=self.latch,
            min_on=self.min_on,
        )


class MatrixRowConfig(_Table):
    """A row trips when ``vote`` distinct alarms matching ``causes`` hold (1ooN, 2ooN...)."""

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    causes: list[str] = Field(min_length=1, description="alarm id patterns")
    vote: int = Field(1, ge=1, le=32)
    abort: list[str] = Field(default_factory=list, description="alarms that hold delayed effects")
    effects: list[MatrixEffectConfig] = Field(min_length=1)

    def to_spec(self) -> RowSpec:
        return RowSpec(
            name=self.name,
            causes=tuple(self.causes),
            vote=self.vote,
            abort=tuple(self.abort),
            effects=tuple(e.to_spec() for e in self.effects),
        )


class PermitConfig(_Table):
    relay: str
    state: bool


class InterlockConfig(_Table):
    """Before ``relay`` leaves its resting state: no ``inhibit`` alarm, every permit met."""

    relay: str
    inhibit: list[str] = Field(default_factory=list, description="alarm id patterns")
    permit: list[PermitConfig] = Field(default_factory=list)

    def to_spec(self) -> InterlockSpec:
        return InterlockSpec(
            relay=self.relay,
            inhibit=tuple(self.inhibit),
            permit=tuple((p.relay, p.state) for p in self.permit),
        )


class WatchdogConfig(_Table):
    """Feed a relay module's host watchdog: a heartbeat register written every interval."""

    device: str
    heartbeat: str = Field(description="key of a writable register point on that device")
    interval: float = Field(1.0, gt=0, le=60, description="seconds between heartbeats")
    timeout: float = Field(3.0, gt=0, le=3600, description="the module's host-loss timeout")
    timeout_point: str | None = Field(None, description="register that sets the timeout")

    def to_spec(self) -> WatchdogSpec:
        return WatchdogSpec(
            device=self.device,
            heartbeat=self.heartbeat,
            interval=self.interval,
            timeout=self.timeout,
            timeout_point=self.timeout_point,
        )


class SafetySection(_Table):
    max_override: float = Field(8 * 3600.0, gt=0, description="longest manual override, s")

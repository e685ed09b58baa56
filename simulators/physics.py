"""A storage zone as one thermal mass: heat loads warm it, the building and fans cool it.

First-order exchange is enough to rehearse alarms and interlocks: the zone relaxes
toward the building's ambient air at ``loss_rate`` per second and, while its exhaust fan
runs, toward fresh outside air at ``fan_rate`` per second. A heat load (a charging cart,
sun on a wall, a cell venting) adds degrees per second on top. Gases (H2, CO, HF, in ppm)
and smoke (%obs/m) come from sources in units per second and are diluted by the same
air change.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, kw_only=True)
class Zone:
    name: str
    temperature: float = 22.0
    humidity: float = 35.0
    ambient_temperature: float = 22.0
    ambient_humidity: float = 40.0
    fresh_air_temperature: float = 16.0
    fresh_air_humidity: float = 30.0
    loss_rate: float = 0.005
    fan_rate: float = 0.08
    heat_load: float = 0.0
    humidity_load: float = 0.0
    h2: float = 0.0
    co: float = 0.0
    hf: float = 0.0
    smoke: float = 0.0
    h2_load: float = 0.0
    co_load: float = 0.0
    hf_load: float = 0.0
    smoke_load: float = 0.0
    # Three smoke detectors watch the zone; a failed one reads a fixed value of its own.
    stuck_detectors: dict[int, float] = field(default_factory=dict)
    abort_pressed: bool = False
    fan_on: bool = False
    deluge_on: bool = False
    deluge_rate: float = 0.3
    # A scenario may hold the fire panel's zone in a state ("fire", "fault", ...).
    panel_state: str | None = None

    def detector(self, index: int) -> float:
        """Smoke detector 1, 2 or 3 of the zone, %obs/m."""
        return self.stuck_detectors.get(index, self.smoke)

    def step(self, dt: float) -> None:
        exchange_t = self.loss_rate * (self.ambient_temperature - self.temperature)
        exchange_h = self.loss_rate * (self.ambient_humidity - self.humidity)
        if self.fan_on:
            exchange_t += self.fan_rate * (self.fresh_air_temperature - self.temperature)
            exchange_h += self.fan_rate * (self.fresh_air_humidity - self.humidity)
        if self.deluge_on:
            # Water: the zone cools fast towards the water's temperature and saturates.
            exchange_t += self.deluge_rate * (10.0 - self.temperature)
            exchange_h += self.deluge_rate * (100.0 - self.humidity)
        self.temperature += (exchange_t + self.heat_load) * dt
        self.humidity += (exchange_h + self.humidity_load) * dt
        self.humidity = min(100.0, max(0.0, self.humidity))
        # Gases and smoke: sources add, the building's air change and the fan dilute.
        dilution = self.loss_rate + (self.fan_rate if self.fan_on else 0.0)
        dilution += self.deluge_rate if self.deluge_on else 0.0
        for name in ("h2", "co", "hf", "smoke"):
            level = getattr(self, name)
            load = getattr(self, f"{name}_load")
            setattr(self, name, max(0.0, level + (load - dilution * level) * dt))

"""In-process fan-out: samples from the sources, conditions from the actuators."""

from gateway.bus.samples import SampleBus

__all__ = ["SampleBus"]

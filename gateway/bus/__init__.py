"""In-process fan-out of samples from the pollers to whoever consumes them."""

from gateway.bus.samples import SampleBus

__all__ = ["SampleBus"]

"""Values that flow through the gateway: samples in, events out."""

from gateway.core.events import Event, EventSink
from gateway.core.samples import Quality, Sample, SampleHandler

__all__ = ["Event", "EventSink", "Quality", "Sample", "SampleHandler"]

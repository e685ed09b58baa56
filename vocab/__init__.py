"""The gateway's shared vocabulary: samples, events, scans and the ids that name things.

This package sits at the bottom of the tree: drivers, rules, actuators, sinks and the
daemon all import it, and it imports none of them.
"""

from vocab.events import Event, EventSink
from vocab.samples import GOOD, Quality, Sample, SampleHandler, Value
from vocab.scans import Scan, ScanHandler

__all__ = [
    "GOOD",
    "Event",
    "EventSink",
    "Quality",
    "Sample",
    "SampleHandler",
    "Scan",
    "ScanHandler",
    "Value",
]

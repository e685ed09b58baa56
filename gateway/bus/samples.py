"""The sample bus: pollers publish, the rules and the telemetry cache subscribe.

Delivery is synchronous and in subscription order: the rules see a poll's samples before
anything else does, and nothing is queued that could grow without bound.
"""

from __future__ import annotations

from collections.abc import Sequence

from vocab.samples import Sample, SampleHandler


class SampleBus:
    def __init__(self) -> None:
        self._handlers: list[SampleHandler] = []

    def subscribe(self, handler: SampleHandler) -> None:
        self._handlers.append(handler)

    def __call__(self, samples: Sequence[Sample]) -> None:
        for handler in self._handlers:
            handler(samples)

from __future__ import annotations

from gateway.core.poller import POINTS_PER_PHASE, phases


def test_small_devices_poll_together() -> None:
    assert phases([(0.1, 20)] * 5) == [0.0] * 5


def test_large_devices_spread_so_that_no_phase_holds_more_than_its_share() -> None:
    offsets = phases([(1.0, 1000)] * 50)
    by_phase: dict[float, int] = {}
    for offset in offsets:
        by_phase[offset] = by_phase.get(offset, 0) + 1000
    assert len(by_phase) == 25
    assert max(by_phase.values()) <= POINTS_PER_PHASE
    assert all(0 <= offset < 1.0 for offset in offsets)


def test_each_interval_spreads_on_its_own() -> None:
    offsets = phases([(1.0, 3000), (0.5, 10), (1.0, 3000)])
    assert offsets == [0.0, 0.0, 0.5]

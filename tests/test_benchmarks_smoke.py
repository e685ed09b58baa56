"""Seconds-long runs of the benchmarks, so that they do not rot. No figures are judged here:
the figures are measured by hand and reported in benchmarks/REPORT.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import outbox_drain

pytestmark = pytest.mark.integration


def test_outbox_drain_benchmark_runs(tmp_path: Path) -> None:
    figures = outbox_drain.measure(300, tmp_path)
    assert figures.events == 300
    assert figures.in_order


def test_outbox_resume_benchmark_runs(tmp_path: Path) -> None:
    assert outbox_drain.measure_resume(tmp_path, n=50) > 0

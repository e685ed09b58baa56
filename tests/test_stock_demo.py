"""The demo's stock part plays through: stored, refused and alarmed, moved, cleared."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.demo_stock import play_stock


@pytest.mark.integration
def test_stock_demo(tmp_path: Path) -> None:
    lines: list[tuple[str, str]] = []
    assert play_stock(tmp_path, lambda topic, text: lines.append((topic, text)))
    said = dict(lines)
    assert "zone cell-store does not allow hazard class 3" in said["REFUSED"]
    assert said["reader"].startswith("BEEP-BEEP")
    assert said["CLEARED"].startswith("stock.putaway.misplaced")

"""``cellsafe check-config`` says which optional services a file switches on."""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w

from gateway.cli.summary import summarise
from gateway.config import load_settings

ROOT = Path(__file__).resolve().parents[1]


def _summary(tmp_path: Path, extra: dict[str, object]) -> str:
    data = tomllib.loads((ROOT / "config/example.toml").read_text(encoding="utf-8"))
    data.update(extra)
    site = tmp_path / "site.toml"
    site.write_text(tomli_w.dumps(data), encoding="utf-8")
    return summarise(load_settings(site), site)


def test_the_example_switches_on_no_optional_service(tmp_path: Path) -> None:
    summary = _summary(tmp_path, {})
    for head in ("console ", "metrics ", "events ", "series ", "stock "):
        assert not any(line.startswith(head) for line in summary.splitlines()), head
    assert "9 points: temperature" in summary


def test_each_switched_on_service_has_its_line(tmp_path: Path) -> None:
    users = tmp_path / "console-users"
    users.write_text("", encoding="utf-8")
    summary = _summary(
        tmp_path,
        {
            "console": {"listen": "127.0.0.1:8443", "users_file": str(users)},
            "metrics": {"listen": "127.0.0.1:9108"},
            "event_file": {"path": str(tmp_path / "events.jsonl")},
            "timeseries": {"url": "http://127.0.0.1:8428"},
            "stock": {"master_file": str(ROOT / "config/stock-master.toml")},
        },
    ).splitlines()
    assert f"console  http://127.0.0.1:8443/ accounts in {users}" in summary
    assert "metrics  http://127.0.0.1:9108/metrics, /health/live, /health/ready" in summary
    assert f"events   every event to {tmp_path / 'events.jsonl'}" in summary
    assert (
        "series   http://127.0.0.1:8428 (no samples: [telemetry] interval is 0), token not set"
        in summary
    )
    master = ROOT / "config/stock-master.toml"
    assert f"stock    master {master} (a newer one from the WMS replaces it)" in summary

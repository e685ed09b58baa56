# ruff: noqa: RUF001  (Chinese text takes full-width punctuation)
"""Who is told what and when: the planner, the rota and the words, on an explicit clock."""

from __future__ import annotations

import logging
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from gateway.cli.summary import summarise
from gateway.config import ConfigError, load_settings
from gateway.config.notify import NotifySection, RouteConfig, ShiftConfig
from gateway.notify import mask
from gateway.notify.plan import Action, Notice, Planner
from gateway.notify.rota import on_shift
from gateway.notify.text import render

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "config" / "notify.toml"
SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 30, 14, 0, tzinfo=SHANGHAI).timestamp()  # a Monday, 14:00 local
ALARM = "electrolyte-store.temperature.high"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")


def raised(alarm_id: str = ALARM, ts: float = T0, **fields: Any) -> dict[str, Any]:
    body = {
        "id": alarm_id,
        "state": "unack",
        "priority": "high",
        "zone": alarm_id.split(".")[0],
        "value": 31.5,
        "limit": 30.0,
        "unit": "degC",
        **fields,
    }
    return {"type": "alarm.raised", "ts": iso(ts), "alarm": body}


def event(kind: str, alarm_id: str = ALARM, ts: float = T0, **body: Any) -> dict[str, Any]:
    return {"type": kind, "ts": iso(ts), "alarm": {"id": alarm_id, **body}}


def planner(**options: Any) -> Planner:
    route = RouteConfig(priorities=["high"], escalate_after=60.0, also=["boss"])
    return Planner(
        [route],
        lambda ts: ["first", "second", "third"],
        **{"action_window": 2.0, "flood_count": 5, "flood_window": 30.0, **options},
    )


def test_raise_waits_for_what_the_gateway_did_then_tells_the_first_on_shift() -> None:
    p = planner()
    assert p.on_event(raised(), 100.0) == []
    switched = {
        "type": "actuator.switched",
        "actuator": {"name": "exhaust-fan-1", "state": "on", "causes": [ALARM]},
    }
    p.on_event(switched, 100.5)
    p.on_event({"type": "safety.tripped", "safety": {"row": "vent", "votes": [ALARM]}}, 101.0)
    assert p.tick(101.9) == []
    [notice] = p.tick(102.0)
    assert notice.kind == "raised"
    assert notice.people == ("first", "boss")
    assert notice.actions == (Action("relay", "exhaust-fan-1", "on"), Action("row", "vent"))
    assert notice.ts == pytest.approx(T0, abs=0.01)


def test_low_priority_and_other_zones_follow_no_route() -> None:
    p = planner()
    p.on_event(raised(priority="low"), 100.0)
    assert p.tick(200.0) == []


def test_escalation_goes_to_the_next_person_each_period_until_acknowledged() -> None:
    p = planner()
    p.on_event(raised(), 100.0)
    p.tick(102.0)
    assert p.tick(159.0) == []
    [first] = p.tick(160.0)
    assert (first.kind, first.people, first.step) == ("escalated", ("second",), 1)
    assert first.ts == pytest.approx(T0 + 60.0, abs=0.01)
    assert p.tick(200.0) == []
    [second] = p.tick(220.0)
    assert second.people == ("third",)
    p.on_event(event("alarm.acknowledged", state="acked", acked=True), 230.0)
    assert p.tick(400.0) == []
    [cleared] = p.on_event(event("alarm.cleared", state="normal", value=25.0), 410.0)
    assert cleared.kind == "cleared"
    assert cleared.people == ("first", "boss", "second", "third")
    assert cleared.alarm["value"] == 25.0


def test_clear_before_escalation_ends_it() -> None:
    p = planner()
    p.on_event(raised(), 100.0)
    p.tick(102.0)
    [cleared] = p.on_event(event("alarm.cleared", state="rtn_unack"), 110.0)
    assert cleared.people == ("first", "boss")
    assert p.tick(1000.0) == []


def test_a_flood_is_one_summary_and_one_end() -> None:
    p = planner()
    notices: list[Notice] = []
    for i in range(40):
        notices += p.on_event(raised(f"zone-{i % 4}.gas{i}.high"), 100.0 + i * 0.01)
    notices += p.tick(103.0)
    assert [n.kind for n in notices] == ["flood"]
    flood = notices[0].flood
    assert flood is not None and flood.raised == 40
    assert flood.by_zone == {"zone-0": 10, "zone-1": 10, "zone-2": 10, "zone-3": 10}
    assert notices[0].people == ("first", "boss")
    assert p.tick(120.0) == []  # still within the window: silence
    [over] = p.tick(131.0)
    assert over.kind == "flood_over"
    assert not p.flooding


def test_the_alarm_managers_flood_also_starts_a_summary() -> None:
    p = planner(flood_count=100)
    p.on_event({"type": "alarm.flood", "flood": {"state": "started"}}, 100.0)
    p.on_event(raised(), 100.1)
    [summary] = p.tick(103.0)
    assert summary.kind == "flood" and summary.flood is not None and summary.flood.raised == 1
    p.on_event({"type": "alarm.flood", "flood": {"state": "ended"}}, 104.0)
    assert [n.kind for n in p.tick(104.1)] == []  # the ending came with the event
    assert not p.flooding


def test_a_chattering_alarm_is_told_once() -> None:
    p = planner()
    told: list[Notice] = []
    now = 100.0
    for _ in range(2):
        p.on_event(raised(), now)
        told += p.tick(now + 2)
        told += p.on_event(event("alarm.cleared", state="normal"), now + 3)
        now += 4
    p.on_event(raised(), now)
    told += p.on_event(event("alarm.chattering", raised=3, window_s=60.0), now)
    for _ in range(5):
        now += 4
        p.on_event(raised(), now)
        told += p.tick(now + 2)
        told += p.on_event(event("alarm.cleared", state="normal"), now + 3)
    kinds = [n.kind for n in told]
    assert kinds == ["raised", "cleared", "raised", "cleared", "chattering"]
    p.tick(now + 61)  # quiet for the window: told again
    p.on_event(raised(), now + 62)
    assert [n.kind for n in p.tick(now + 64)] == ["raised"]


def test_rota_by_weekday_and_time_and_across_midnight() -> None:
    shifts = {
        "day": ShiftConfig(days=["mon"], start="08:00", end="20:00", people=["a", "b"]),
        "night": ShiftConfig(days=["mon"], start="20:00", end="08:00", people=["c"]),
    }

    def at(hour: int) -> float:
        return datetime(2026, 11, 30, hour, 30, tzinfo=SHANGHAI).timestamp()

    assert on_shift(shifts, at(9), SHANGHAI) == ["a", "b"]
    assert on_shift(shifts, at(21), SHANGHAI) == ["c"]
    assert on_shift(shifts, at(21) + 8 * 3600, SHANGHAI) == ["c"]  # Tuesday 05:30
    assert on_shift(shifts, at(7), SHANGHAI) == []  # Monday 07:30: Sunday had no night
    assert on_shift(shifts, at(21), ZoneInfo("UTC")) == ["a", "b"]  # the zone decides: 13:30 UTC
    overlap = {
        **shifts,
        "cover": ShiftConfig(days=["mon"], start="09:00", end="10:00", people=["d", "a"]),
    }
    assert on_shift(overlap, at(9), SHANGHAI) == ["a", "d", "b"]  # first of each, then second


def test_message_in_chinese_and_english_names_zone_value_limit_time_and_action() -> None:
    notice = Notice(
        "raised",
        ("first",),
        T0,
        raised()["alarm"],
        actions=(Action("relay", "exhaust-fan-1", "on"), Action("row", "deluge")),
    )
    title, body = render(notice, "zh", "plant-a", SHANGHAI)
    assert "报警" in title and "electrolyte-store" in title
    for text in ("区域：electrolyte-store", "数值：31.5 degC", "限值：30 degC"):
        assert text in body
    assert "时间：2026-11-30 14:00:00 CST" in body
    assert "exhaust-fan-1 已开启（已回读确认）" in body and "联动 deluge 已触发" in body
    title, body = render(notice, "en", "plant-a", SHANGHAI)
    assert title.startswith("[plant-a] ALARM electrolyte-store")
    assert "Value: 31.5 degC" in body and "Limit: 30 degC" in body
    assert "Time: 2026-11-30 14:00:00 CST" in body
    assert "exhaust-fan-1 switched on (verified by read-back)" in body


def test_the_sample_loads_with_its_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPS_DINGTALK", "OPS_WECOM", "SMS_TOKEN"):
        monkeypatch.setenv(f"CELLSAFE_NOTIFY__SECRETS__{name}", f"tok-{name.lower()}-123456")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "notify__secrets__li_wei_mail").write_text("mailtos://u:pw-0123456@mx/?to=x\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    site = tmp_path / "site.toml"
    site.write_text((ROOT / "config" / "example.toml").read_text() + "\n" + SAMPLE.read_text())
    settings = load_settings(site)
    assert settings.notify.enabled
    urls = settings.notify.channel_urls()
    assert urls["ops-dingtalk"] == "dingtalk://tok-ops_dingtalk-123456/"
    assert urls["li-wei-mail"] == "mailtos://u:pw-0123456@mx/?to=x"
    assert "tok-ops_dingtalk" not in settings.model_dump_json()
    summary = summarise(settings, site)
    assert "notify   2 routes, 3 people, 3 shifts, times in Asia/Shanghai" in summary
    assert "tok-" not in summary and "pw-0123456" not in summary
    monkeypatch.delenv("CELLSAFE_NOTIFY__SECRETS__SMS_TOKEN")
    with pytest.raises(ConfigError, match="sms_token"):
        load_settings(site)


def test_secrets_in_the_file_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    example = (ROOT / "config" / "example.toml").read_text()
    site.write_text(example + '\n[notify.secrets]\nops = "leak"\n')
    with pytest.raises(ConfigError, match=r"notify\.secrets"):
        load_settings(site)
    data = tomllib.loads(SAMPLE.read_text())["notify"]
    data["people"]["anna"]["langauge"] = "en"
    with pytest.raises(ValidationError, match="langauge"):
        NotifySection.model_validate(data)


def test_masking_hides_secrets_and_their_url_parts_in_every_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "mailtos://user:S3cretPassw0rd@smtp.example.com/?to=ops&token=T0kenValue99"
    masking = mask.install([secret, "dingTalkToken42"])
    try:
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("apprise").warning("login failed with S3cretPassw0rd")
            logging.getLogger("urllib3.connectionpool").debug("GET /send?t=T0kenValue99")
            logging.getLogger(mask.LOGGER).info("url %s and %s", secret, "dingTalkToken42")
    finally:
        mask.remove(masking)
    text = caplog.text
    assert text.count("***") >= 4
    for part in ("S3cretPassw0rd", "T0kenValue99", "dingTalkToken42"):
        assert part not in text


def test_masking_reaches_the_urllib3_loggers_that_write_a_webhook_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "jsons://sms.example.com/send?token=T0kenValue99&to=%2B8613800000000"
    masking = mask.install([url])
    try:
        with caplog.at_level(logging.DEBUG):
            # what urllib3 writes for a webhook answering with a malformed header
            logging.getLogger("urllib3.connection").warning(
                "Failed to parse headers (url=%s): %s",
                "https://sms.example.com:443/send?token=T0kenValue99",
                "bad header",
            )
            logging.getLogger("urllib3.util.retry").debug(
                "Incremented Retry for (url='%s'): %r", "/send?token=T0kenValue99", "Retry(2)"
            )
    finally:
        mask.remove(masking)
    assert len(caplog.records) == 2
    assert "T0kenValue99" not in caplog.text

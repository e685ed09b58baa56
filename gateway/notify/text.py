# ruff: noqa: RUF001  (Chinese text takes full-width punctuation)
"""The words of a notice, in Chinese (``zh``) or English (``en``), per recipient (pure).

A message names the site, the zone, the alarm, its priority (ISA-18.2 terms: raised,
acknowledged, cleared), the value against its limit with the unit, the time in the site's
time zone, and what the gateway did (relays switched and verified, matrix rows tripped).
``render`` returns ``(title, body)``; titles are short for SMS and robot cards.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config.notify import Language
from gateway.notify.plan import Action, Notice
from vocab.ids import GATEWAY

_WORDS: dict[Language, dict[str, str]] = {
    "zh": {
        "raised": "报警",
        "escalated": "报警升级（第{step}次，仍未确认）",
        "cleared": "报警解除",
        "chattering": "报警频繁抖动（只报一次）",
        "flood": "报警泛滥：{raised} 条报警",
        "flood_over": "报警泛滥结束：共 {raised} 条报警",
        "zone": "区域",
        "alarm": "报警点",
        "priority": "优先级",
        "value": "数值",
        "limit": "限值",
        "time": "时间",
        "did": "网关动作",
        "none": "无",
        "by_zone": "按区域",
        "by_priority": "按优先级",
        "window": "{window:g} 秒内",
        "relay": "{name} 已{state}（已回读确认）",
        "relay_failed": "{name} 动作失败",
        "row": "联动 {name} 已触发",
        "on": "开启",
        "off": "关闭",
        "low": "低",
        "medium": "中",
        "high": "高",
        "critical": "紧急",
        "sep": "：",
        "list": "，",
    },
    "en": {
        "raised": "ALARM",
        "escalated": "ALARM ESCALATED (step {step}, still unacknowledged)",
        "cleared": "ALARM CLEARED",
        "chattering": "ALARM CHATTERING (reported once)",
        "flood": "ALARM FLOOD: {raised} alarms",
        "flood_over": "ALARM FLOOD OVER: {raised} alarms in all",
        "zone": "Zone",
        "alarm": "Alarm",
        "priority": "Priority",
        "value": "Value",
        "limit": "Limit",
        "time": "Time",
        "did": "Gateway did",
        "none": "nothing",
        "by_zone": "By zone",
        "by_priority": "By priority",
        "window": "within {window:g} s",
        "relay": "{name} switched {state} (verified by read-back)",
        "relay_failed": "{name} FAILED to switch",
        "row": "matrix row {name} tripped",
        "on": "on",
        "off": "off",
        "low": "low",
        "medium": "medium",
        "high": "high",
        "critical": "critical",
        "sep": ": ",
        "list": ", ",
    },
}


def local_time(ts: float, zone: ZoneInfo) -> str:
    """``2026-11-30 12:04:05 CST``: Unix time ``ts`` in the site's time zone."""
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _number(value: object, unit: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}" if unit else text


def action_text(action: Action, language: Language) -> str:
    w = _WORDS[language]
    return w[action.kind].format(name=action.name, state=w.get(action.state, action.state))


def render(notice: Notice, language: Language, site: str, zone: ZoneInfo) -> tuple[str, str]:
    """The title and body of ``notice`` for a reader of ``language``."""
    w = _WORDS[language]
    if notice.flood is not None:
        return _flood(notice, w, site, zone)
    alarm: Mapping[str, Any] = notice.alarm
    where = str(alarm.get("zone") or GATEWAY)
    headline = w[notice.kind].format(step=notice.step)
    title = f"[{site}] {headline} {where} {alarm.get('id', '')}".strip()
    priority = str(alarm.get("priority", ""))
    lines = [
        f"{w['zone']}{w['sep']}{where}",
        f"{w['alarm']}{w['sep']}{alarm.get('id', '')}",
        f"{w['priority']}{w['sep']}{w.get(priority, priority)}",
        f"{w['value']}{w['sep']}{_number(alarm.get('value'), alarm.get('unit'))}",
        f"{w['limit']}{w['sep']}{_number(alarm.get('limit'), alarm.get('unit'))}",
        f"{w['time']}{w['sep']}{local_time(notice.ts, zone)}",
    ]
    if notice.kind in ("raised", "escalated"):
        did = w["list"].join(action_text(a, language) for a in notice.actions) or w["none"]
        lines.append(f"{w['did']}{w['sep']}{did}")
    message = alarm.get("message")
    if message:
        lines.append(str(message))
    return title, "\n".join(lines)


def _flood(notice: Notice, w: Mapping[str, str], site: str, zone: ZoneInfo) -> tuple[str, str]:
    flood = notice.flood
    assert flood is not None
    headline = w[notice.kind].format(raised=flood.raised)
    by_zone = w["list"].join(f"{k} {v}" for k, v in flood.by_zone.items()) or w["none"]
    by_priority = (
        w["list"].join(f"{w.get(k, k)} {v}" for k, v in flood.by_priority.items()) or w["none"]
    )
    lines = [
        f"{headline} ({w['window'].format(window=flood.window_s)})",
        f"{w['by_zone']}{w['sep']}{by_zone}",
        f"{w['by_priority']}{w['sep']}{by_priority}",
        f"{w['time']}{w['sep']}{local_time(notice.ts, zone)}",
    ]
    return f"[{site}] {headline}", "\n".join(lines)

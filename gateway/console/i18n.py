"""English and Chinese (Simplified) for the console; the language is chosen per request.

The catalogue is sent to the browser as one JSON object (``GET /api/i18n``) and the page
fills its text from it, so no build step and no template engine. The choice, first match
winning: the language set in the console for this session, the account's ``lang``, the
browser's ``Accept-Language`` (RFC 9110 section 12.5.4, q-values honoured), the
configured default. Terms follow ISA-18.2 for alarm states, and GB 50116 wording for
fire-alarm terms in Chinese (确认 acknowledge, 屏蔽 shelve, 复位 reset).
"""

# Chinese text uses full-width commas, colons and brackets by its own rules: not typos.
# ruff: noqa: RUF001

from __future__ import annotations

LANGUAGES = ("en", "zh")

EN: dict[str, str] = {
    "title": "CellSafe console",
    "overview": "Overview",
    "alarms": "Alarms",
    "relays": "Relays",
    "matrix": "Cause and effect",
    "events": "Event log",
    "health": "Devices",
    "trends": "Trends",
    "signin": "Sign in",
    "signout": "Sign out",
    "name": "Name",
    "password": "Password",
    "signin_failed": "Wrong name or password",
    "signin_throttled": "Too many failed sign-ins from this device: wait and try again",
    "language": "Language",
    "banner": "NEW HIGH-PRIORITY ALARM",
    "banner_go": "Show alarms",
    "offline": "No live connection to the gateway: values may be old",
    "signin_alarms": "{n} high-priority alarm(s) active: sign in to see them",
    "reauth_title": "Give your password again to act",
    "reauth_why": "No interaction for a while: the view stays, an action needs your password.",
    "reauth_submit": "Confirm and act",
    "reauth_failed": "Wrong password",
    "cancel": "Cancel",
    "ack": "Acknowledge",
    "shelve": "Shelve",
    "unshelve": "Unshelve",
    "reset": "Reset",
    "reason": "Reason",
    "minutes": "Minutes",
    "override": "Override",
    "end_override": "End override",
    "on": "on",
    "off": "off",
    "unknown": "unknown",
    "state": "State",
    "priority": "Priority",
    "alarm": "Alarm",
    "value": "Value",
    "message": "Message",
    "no_alarms": "No alarm is active.",
    "relay": "Relay",
    "faulted": "faulted",
    "until": "until",
    "by": "by",
    "row": "Row",
    "tripped": "tripped",
    "latched": "latched",
    "aborted": "aborted",
    "votes": "Votes",
    "abort": "Abort",
    "resume": "Resume",
    "reset_row": "Reset row",
    "type": "Type",
    "category": "Category",
    "all": "all",
    "search": "Search",
    "seq": "Seq",
    "time": "Time",
    "detail": "Detail",
    "device": "Device",
    "polls": "Polls",
    "failures": "Failures",
    "bad_polls": "Bad polls",
    "latency": "Poll latency (ms)",
    "point": "Point",
    "quality": "Quality",
    "last_good": "Last good sample",
    "ago": "s ago",
    "never": "never",
    "role": "Role",
    "viewer": "viewer",
    "operator": "operator",
    "engineer": "engineer",
    "not_allowed": "Your role may not do this",
    "refused": "Refused",
    "done": "Done",
    "temperature": "Temperature",
    "humidity": "Humidity",
    "gas": "Gas",
    "smoke": "Smoke",
    "normal": "normal",
    "uplink": "WMS link",
    "backlog": "Backlog",
    "reason_needed": "A reason is required",
    "p_critical": "critical",
    "p_high": "high",
    "p_medium": "medium",
    "p_low": "low",
    "s_unack": "unacknowledged",
    "s_acked": "acknowledged",
    "s_rtn_unack": "returned, unacknowledged",
    "s_latched": "latched",
    "s_shelved": "shelved",
    "s_suppressed": "suppressed",
    "s_out_of_service": "out of service",
    "s_normal": "normal",
}

ZH: dict[str, str] = {
    "title": "CellSafe 操作台",
    "overview": "总览",
    "alarms": "报警",
    "relays": "继电器",
    "matrix": "联动矩阵",
    "events": "事件日志",
    "health": "设备",
    "trends": "趋势",
    "signin": "登录",
    "signout": "退出",
    "name": "用户名",
    "password": "密码",
    "signin_failed": "用户名或密码错误",
    "signin_throttled": "此设备登录失败次数过多，请稍候再试",
    "language": "语言",
    "banner": "新的高优先级报警",
    "banner_go": "查看报警",
    "offline": "与网关的实时连接中断：数值可能已过时",
    "signin_alarms": "当前有 {n} 个高优先级报警：请登录查看",
    "reauth_title": "请再次输入密码以执行操作",
    "reauth_why": "一段时间无操作：画面保持不变，执行操作需再次输入密码。",
    "reauth_submit": "验证并执行",
    "reauth_failed": "密码错误",
    "cancel": "取消",
    "ack": "确认",
    "shelve": "屏蔽",
    "unshelve": "解除屏蔽",
    "reset": "复位",
    "reason": "原因",
    "minutes": "分钟",
    "override": "手动强制",
    "end_override": "结束强制",
    "on": "开",
    "off": "关",
    "unknown": "未知",
    "state": "状态",
    "priority": "优先级",
    "alarm": "报警",
    "value": "数值",
    "message": "信息",
    "no_alarms": "当前没有报警。",
    "relay": "继电器",
    "faulted": "故障",
    "until": "直至",
    "by": "操作人",
    "row": "联动行",
    "tripped": "已动作",
    "latched": "已锁存",
    "aborted": "已中止",
    "votes": "表决",
    "abort": "中止",
    "resume": "恢复",
    "reset_row": "复位联动行",
    "type": "类型",
    "category": "类别",
    "all": "全部",
    "search": "搜索",
    "seq": "序号",
    "time": "时间",
    "detail": "详情",
    "device": "设备",
    "polls": "轮询次数",
    "failures": "失败",
    "bad_polls": "坏质量轮询",
    "latency": "轮询耗时（毫秒）",
    "point": "测点",
    "quality": "质量",
    "last_good": "最后有效采样",
    "ago": "秒前",
    "never": "从未",
    "role": "角色",
    "viewer": "查看员",
    "operator": "操作员",
    "engineer": "工程师",
    "not_allowed": "您的角色无权执行此操作",
    "refused": "被拒绝",
    "done": "已完成",
    "temperature": "温度",
    "humidity": "湿度",
    "gas": "气体",
    "smoke": "烟雾",
    "normal": "正常",
    "uplink": "WMS 连接",
    "backlog": "待发送",
    "reason_needed": "必须填写原因",
    "p_critical": "紧急",
    "p_high": "高",
    "p_medium": "中",
    "p_low": "低",
    "s_unack": "未确认",
    "s_acked": "已确认",
    "s_rtn_unack": "已恢复，未确认",
    "s_latched": "已锁存",
    "s_shelved": "已屏蔽",
    "s_suppressed": "已抑制",
    "s_out_of_service": "停用",
    "s_normal": "正常",
}

CATALOGUES = {"en": EN, "zh": ZH}


def from_accept_language(header: str | None) -> str | None:
    """The first of our languages the browser accepts, by q-value; None if none is."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-", 1)[0]
        if primary in LANGUAGES and q > 0:
            ranked.append((-q, index, primary))
    return min(ranked)[2] if ranked else None


def choose(chosen: str, accept_language: str | None, default: str) -> str:
    """``chosen``: the session's or account's language, or empty."""
    if chosen in LANGUAGES:
        return chosen
    return from_accept_language(accept_language) or default

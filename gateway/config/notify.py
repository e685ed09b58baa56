"""The ``[notify]`` table: who is told of an alarm, when, and through which channel.

People, their channels and language, the shifts of the rota (weekdays and times in the
site's time zone, ``timezone``) and the routes (which alarms, by zone and priority, are
told on raise, escalation and clear) are in the file. A channel names an apprise URL
(DingTalk robot ``dingtalk://``, WeCom robot ``wecombot://``, e-mail ``mailtos://``, an SMS
gateway through a generic webhook ``json://`` or ``form://``), but the URL or its token is
a secret: the file names it, and its value comes only from the environment
(``CELLSAFE_NOTIFY__SECRETS__<NAME>``) or a systemd credential (``notify__secrets__<name>``).
The sample is ``config/notify.toml``; ``docs/notifications.md`` explains it.
"""

from __future__ import annotations

import os
import re
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from rules.alarms import Priority

Language = Literal["zh", "en"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Trigger = Literal["raise", "escalate", "clear"]
TRIGGERS: tuple[Trigger, ...] = ("raise", "escalate", "clear")
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PRIORITIES: tuple[Priority, ...] = ("low", "medium", "high", "critical")
SCHEMES = ("dingtalk", "wecombot", "mailto", "mailtos", "json", "jsons", "form", "forms")
SECRET_PATTERN = r"^[a-z0-9_]{1,64}$"
NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelConfig(_Section):
    """One way to reach people: an apprise URL whose secret part is held elsewhere."""

    secret: str = Field(
        pattern=SECRET_PATTERN,
        description="name of the secret: CELLSAFE_NOTIFY__SECRETS__<NAME> or the credential"
        " notify__secrets__<name>",
    )
    url: str | None = Field(
        None,
        description="apprise URL with '{secret}' where the token goes, e.g."
        " 'dingtalk://{secret}/'; none: the secret is the whole apprise URL",
    )

    @field_validator("url")
    @classmethod
    def _template(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if url.count("{secret}") != 1:
            raise ValueError("the URL holds '{secret}' exactly once (the token is a secret)")
        scheme = url.partition("://")[0]
        if scheme not in SCHEMES:
            raise ValueError(f"scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
        return url


class PersonConfig(_Section):
    language: Language = Field("zh", description="language of this person's messages")
    channels: list[str] = Field(min_length=1, description="channel names, each one is used")


class ShiftConfig(_Section):
    """A shift: on ``days`` from ``start`` to ``end`` (site time; an end at or before the
    start runs past midnight into the next day). ``people`` in escalation order: the
    first is told on raise, the next on each escalation."""

    days: list[Weekday] = Field(min_length=1, description="weekdays the shift starts on")
    start: time = Field(description="local time, HH:MM")
    end: time = Field(description="local time, HH:MM; at or before start: the next day")
    people: list[str] = Field(min_length=1, description="in escalation order")


class RouteConfig(_Section):
    """Which alarms are told, and on what. The first route matching an alarm decides."""

    zones: list[str] = Field(default_factory=lambda: ["*"], description="zone patterns, '*'")
    priorities: list[Priority] = Field(default_factory=lambda: list(PRIORITIES))
    on: list[Trigger] = Field(default_factory=lambda: list(TRIGGERS))
    escalate_after: float = Field(
        600.0, gt=0, le=86400, description="seconds unacknowledged before the next person"
    )
    also: list[str] = Field(
        default_factory=list, description="people told on raise and clear besides the shift"
    )


class NotifySection(_Section):
    """Notifications of alarms to people (docs/notifications.md). No routes: switched off."""

    timezone: str = Field("Asia/Shanghai", description="IANA zone of shifts and message times")
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    people: dict[str, PersonConfig] = Field(default_factory=dict)
    shifts: dict[str, ShiftConfig] = Field(default_factory=dict)
    routes: list[RouteConfig] = Field(default_factory=list)
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description="environment only; see channel_urls()"
    )
    action_window: float = Field(
        3.0, ge=0, le=60, description="seconds a raise waits for the relays it switched"
    )
    flood_count: int = Field(
        10, ge=1, description="raises within flood_window above which one summary is sent"
    )
    flood_window: float = Field(60.0, gt=0, le=86400, description="seconds")
    max_age: float = Field(
        900.0,
        gt=0,
        description="seconds: older events when read (a backlog, a new notifier) are not told",
    )
    queue: int = Field(200, ge=1, le=100000, description="messages waiting per channel")
    overflow: Literal["drop_oldest"] = Field(
        "drop_oldest", description="a full channel queue gives up its oldest message"
    )
    retry_min: float = Field(1.0, gt=0, le=3600, description="first retry delay, seconds")
    retry_max: float = Field(60.0, gt=0, le=3600, description="longest retry delay, seconds")
    give_up_after: float = Field(
        3600.0, gt=0, description="seconds after which an unsent message is given up"
    )
    fault_after: float = Field(
        300.0, gt=0, description="seconds a channel may fail before gateway.notify.fault"
    )
    timeout: float = Field(10.0, gt=0, le=300, description="seconds one attempt may take")

    @property
    def enabled(self) -> bool:
        return bool(self.routes)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (an IANA name: Asia/Shanghai)") from None
        return name

    @model_validator(mode="after")
    def _references(self) -> NotifySection:
        for kind, names in (("channel", self.channels), ("person", self.people)):
            for name in names:
                if not re.match(NAME, name):
                    raise ValueError(f"{kind} {name!r}: lower-case letters, digits, '-', '_'")
        for name, person in self.people.items():
            for channel in person.channels:
                if channel not in self.channels:
                    raise ValueError(f"people.{name}: no channel {channel!r} in [notify.channels]")
        for name, shift in self.shifts.items():
            for who in shift.people:
                if who not in self.people:
                    raise ValueError(f"shifts.{name}: no person {who!r} in [notify.people]")
        for index, route in enumerate(self.routes):
            for who in route.also:
                if who not in self.people:
                    raise ValueError(f"routes[{index}]: no person {who!r} in [notify.people]")
        if self.routes and not self.shifts and not any(r.also for r in self.routes):
            raise ValueError("routes but nobody to tell: add [notify.shifts] or 'also'")
        if self.retry_max < self.retry_min:
            raise ValueError("retry_max is shorter than retry_min")
        if self.routes:
            self.channel_urls()  # every channel's secret is there
        return self

    def channel_urls(self) -> dict[str, str]:
        """Each channel's apprise URL, its secret filled in from the environment or else
        its credential file. Raises ``ValueError`` naming the secret that is missing."""
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        env = {name.lower(): value.get_secret_value() for name, value in self.secrets.items()}
        urls: dict[str, str] = {}
        for name, channel in self.channels.items():
            value = env.get(channel.secret)
            if value is None and directory:
                path = Path(directory) / f"notify__secrets__{channel.secret}"
                if path.is_file():
                    value = path.read_text(encoding="utf-8").strip()
            if not value:
                raise ValueError(
                    f"channels.{name}: secret {channel.secret!r} missing (set"
                    f" CELLSAFE_NOTIFY__SECRETS__{channel.secret.upper()} or the credential"
                    f" notify__secrets__{channel.secret})"
                )
            urls[name] = value if channel.url is None else channel.url.replace("{secret}", value)
        return urls

    def secret_values(self) -> list[str]:
        """Every secret value in use, to be masked wherever text is written."""
        try:
            urls = self.channel_urls()
        except ValueError:
            urls = {}
        values = [v.get_secret_value() for v in self.secrets.values()]
        values += [u for n, u in urls.items() if self.channels[n].url is None]
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if directory:
            for channel in self.channels.values():
                path = Path(directory) / f"notify__secrets__{channel.secret}"
                if path.is_file():
                    values.append(path.read_text(encoding="utf-8").strip())
        return sorted({v for v in values if v}, key=len, reverse=True)

"""Operator commands on alarms, from any channel: the local CLI socket or MQTT.

Every command is validated against its model, runs on the pipeline (so its events and the
new alarm state are stored together), and gets a reply. A command that does not apply
gets a refusal that says why; a malformed one never reaches the alarms. Refusals are
recorded as ``command.refused`` events, so the audit trail has them too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.core.pipeline import Pipeline
from gateway.core.status import GatewayStatus
from rules.alarms import AlarmManager, Cause, CommandRefused, Outcome
from rules.matrix import CauseEffectMatrix
from vocab.clock import steady
from vocab.events import Event

_logger = logging.getLogger(__name__)


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    by: str = Field(min_length=1, max_length=64, description="who, for the audit trail")
    reason: str = Field("", max_length=500)


class AlarmCommand(_Command):
    alarm: str = Field(min_length=1, max_length=200)


class ShelveCommand(AlarmCommand):
    duration: float = Field(gt=0, description="seconds")


class ReloadCommand(_Command):
    pass


class OverrideCommand(_Command):
    relay: str = Field(min_length=1, max_length=64)
    state: Literal["on", "off"]
    duration: float = Field(gt=0, description="seconds; every override expires")
    reason: str = Field(min_length=1, max_length=500)


class RelayCommand(_Command):
    relay: str = Field(min_length=1, max_length=64)


class RowCommand(_Command):
    row: str = Field(min_length=1, max_length=64)


SafetyAction = Callable[[CauseEffectMatrix, Any, Cause, float], Event]

_SAFETY_ACTIONS: dict[str, tuple[type[BaseModel], SafetyAction]] = {
    "override": (
        OverrideCommand,
        lambda m, c, by, now: m.override(c.relay, c.state == "on", now + c.duration, by, now),
    ),
    "end_override": (RelayCommand, lambda m, c, by, now: m.end_override(c.relay, by, now)),
    "abort": (RowCommand, lambda m, c, by, now: m.abort(c.row, by, now)),
    "resume": (RowCommand, lambda m, c, by, now: m.resume(c.row, by, now)),
    "reset_row": (RowCommand, lambda m, c, by, now: m.reset(c.row, by, now)),
}
SAFETY_COMMANDS = tuple(_SAFETY_ACTIONS)


Action = Callable[[AlarmManager, Any, Cause, float], Outcome]

_ALARM_ACTIONS: dict[str, tuple[type[BaseModel], Action]] = {
    "ack": (AlarmCommand, lambda m, c, by, now: m.acknowledge(c.alarm, by, now)),
    "reset": (AlarmCommand, lambda m, c, by, now: m.reset(c.alarm, by, now)),
    "shelve": (ShelveCommand, lambda m, c, by, now: m.shelve(c.alarm, by, now, c.duration)),
    "unshelve": (AlarmCommand, lambda m, c, by, now: m.unshelve(c.alarm, by, now)),
    "disable": (AlarmCommand, lambda m, c, by, now: m.remove_from_service(c.alarm, by, now)),
    "enable": (AlarmCommand, lambda m, c, by, now: m.return_to_service(c.alarm, by, now)),
}
ALARM_COMMANDS = tuple(_ALARM_ACTIONS)
COMMANDS = (*ALARM_COMMANDS, *SAFETY_COMMANDS, "status", "reload")


class CommandRouter:
    def __init__(
        self,
        pipeline: Pipeline,
        status: Callable[[], GatewayStatus],
        reload: Callable[[], list[str]],
        max_override: float = 8 * 3600.0,
    ) -> None:
        self._max_override = max_override
        self._pipeline = pipeline
        self._status = status
        self._reload = reload

    def handle(
        self, name: str, args: Mapping[str, Any], channel: str, principal: str = ""
    ) -> dict[str, Any]:
        """Run command ``name``; the reply is ``{"ok": true, ...}`` or has an ``error``.

        ``principal``: the signer whose signature was verified; it is the command's ``by``.
        """
        if principal:
            args = {**args, "by": principal}
        if name == "status":
            return {"ok": True, "status": self._status()}
        if name == "reload":
            return self._reload_config(args, channel, principal)
        model: type[BaseModel]
        if name in _ALARM_ACTIONS:
            model, alarm_action = _ALARM_ACTIONS[name]
        elif name in _SAFETY_ACTIONS:
            model, safety_action = _SAFETY_ACTIONS[name]
        else:
            return self.refuse(
                name,
                args,
                channel,
                f"unknown command {name!r}; known: {', '.join(COMMANDS)}",
                principal,
            )
        command = self._validate(model, name, args, channel, principal)
        if isinstance(command, dict):
            return command  # the refusal
        cause = Cause("operator", f"{command.by} via {channel}", command.reason)
        now = steady()
        try:
            if name in _SAFETY_ACTIONS:
                if isinstance(command, OverrideCommand) and command.duration > self._max_override:
                    raise CommandRefused(f"an override lasts at most {self._max_override:g} s")
                event = self._pipeline.safety(lambda m: safety_action(m, command, cause, now))
                return {"ok": True, "events": [event.type]}
            outcome = self._pipeline.command(lambda m: alarm_action(m, command, cause, now))
        except CommandRefused as err:
            return self.refuse(name, args, channel, str(err), principal)
        alarm = getattr(command, "alarm", "")
        return {
            "ok": True,
            "alarm": alarm,
            "state": self._pipeline.alarms.state(alarm).value,
            "events": [e.type for e in outcome.events],
        }

    def _validate(
        self,
        model: type[BaseModel],
        name: str,
        args: Mapping[str, Any],
        channel: str,
        principal: str,
    ) -> _Command | dict[str, Any]:
        try:
            command = model.model_validate(dict(args))
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
                for e in err.errors()
            )
            return self.refuse(name, args, channel, problems, principal)
        assert isinstance(command, _Command)
        return command

    def _reload_config(
        self, args: Mapping[str, Any], channel: str, principal: str
    ) -> dict[str, Any]:
        """Validate the file on disk; only a valid one replaces the running configuration."""
        try:
            command = ReloadCommand.model_validate(dict(args))
        except ValidationError as err:
            return self.refuse("reload", args, channel, str(err.errors()[0]["msg"]), principal)
        problems = self._reload()
        if problems:
            return self.refuse("reload", args, channel, "; ".join(problems), principal)
        _logger.info("configuration reload requested by %s via %s", command.by, channel)
        return {"ok": True, "reloading": True}

    def refuse(
        self, name: str, args: Mapping[str, Any], channel: str, why: str, principal: str = ""
    ) -> dict[str, Any]:
        """Audit a refusal; ``principal``: the signer, when a signature proved who sent it."""
        _logger.warning("command %s via %s refused: %s", name, channel, why)
        by = str(args.get("by", ""))[:64] if isinstance(args, Mapping) else ""
        command = {"name": name, "channel": channel, "error": why, "by": principal or by}
        if principal:
            command["principal"] = principal
        self._pipeline.record(Event("command.refused", {"command": command}))
        return {"ok": False, "error": why}

"""Commands from the WMS over MQTT: parse, authorise, hand to the router, reply.

A command is published to ``<base>/commands/<name>`` as ``{"id": ..., "token": ...,
"args": {...}}``; the reply goes to ``<base>/replies/<name>`` with the same ``id``. Each
command class has its own shared secret, set through the environment or a systemd
credential; a class with no secret configured is refused over MQTT (the local CLI still
works). The broker's ACL should also limit who may publish to ``commands/#``.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr

from gateway.core.commands import ALARM_COMMANDS, SAFETY_COMMANDS, CommandRouter
from gateway.uplink.mqtt import ReplyTo

_logger = logging.getLogger(__name__)


DELIVERY_COMMANDS = ("confirm", "resend")
DeliveryHandler = Callable[[str, Mapping[str, Any]], dict[str, Any]]


def command_class(name: str) -> str:
    if name in DELIVERY_COMMANDS:
        return "delivery"
    if name in ALARM_COMMANDS:
        return "alarm"
    if name in SAFETY_COMMANDS:
        return "safety"
    return "config" if name == "reload" else name


class MqttCommands:
    def __init__(
        self,
        router: CommandRouter,
        tokens: dict[str, SecretStr | None],
        reply: Callable[[ReplyTo, dict[str, Any]], None],
        delivery: DeliveryHandler | None = None,
    ) -> None:
        self._router = router
        self._tokens = tokens
        self._reply = reply
        self._delivery = delivery

    def __call__(self, name: str, payload: bytes, to: ReplyTo) -> None:
        request_id: Any = None
        try:
            message = json.loads(payload)
            if not isinstance(message, dict):
                raise ValueError("the payload must be a JSON object")
            request_id = message.get("id")
            args = message.get("args", {})
            if not isinstance(args, dict):
                raise ValueError("args must be a JSON object")
        except ValueError as err:
            self._reply(to, {"id": request_id, "ok": False, "error": f"malformed: {err}"})
            self._router.refuse(name, {}, "mqtt", f"malformed: {err}")
            return
        refusal = self._authorise(name, message.get("token"))
        if refusal is not None:
            self._router.refuse(name, args, "mqtt", refusal)
            self._reply(to, {"id": request_id, "ok": False, "error": refusal})
            return
        if name in DELIVERY_COMMANDS and self._delivery is not None:
            self._reply(to, {"id": request_id, **self._delivery(name, args)})
            return
        self._reply(to, {"id": request_id, **self._router.handle(name, args, "mqtt")})

    def _authorise(self, name: str, token: Any) -> str | None:
        klass = command_class(name)
        if klass not in self._tokens:
            return None  # unknown command: the router explains
        secret = self._tokens[klass]
        if secret is None:
            return f"{klass} commands over MQTT are disabled: no token configured"
        given = token if isinstance(token, str) else ""
        if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            return "not authorised: wrong or missing token"
        return None

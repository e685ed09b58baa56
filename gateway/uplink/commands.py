"""Commands from the WMS over MQTT: verify, hand to the router, reply.

A command is published to ``<base>/commands/<name>`` as ``{"jws": "<compact JWS>"}``,
signed by a named principal with its own key (``gateway.uplink.signing``, recipe in
docs/uplink.md); the reply goes to ``<base>/replies/<name>`` with the request's ``id``.
A request is refused when its signature, target, class or age is wrong, or when its nonce
or id was used before within the window (``gateway.uplink.replay``); every refusal is a
``command.refused`` event naming the principal whose signature was verified, and the
events of an accepted command name it as ``by``.

The old form, ``{"id": ..., "token": <class secret>, "args": {...}}``, is accepted only
with ``[commands] shared_tokens = true`` (a warning at start-up): its secret travels in
clear and its ``by`` is whatever the sender wrote. The broker's ACL should also limit
who may publish to ``commands/#``.
"""

from __future__ import annotations

import hmac
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from gateway.config.settings import CommandsSection
from gateway.core.commands import CommandRouter
from gateway.uplink.mqtt import ReplyTo
from gateway.uplink.replay import FILE_NAME, SeenRequests
from gateway.uplink.signing import (
    DELIVERY_COMMANDS,
    Principal,
    Refused,
    Window,
    command_class,
    verify,
)
from vocab.clock import steady

_logger = logging.getLogger(__name__)

CHANNEL = "mqtt"
DeliveryHandler = Callable[[str, Mapping[str, Any]], dict[str, Any]]


def principals(section: CommandsSection) -> dict[str, Principal]:
    """The principals that can sign: those with at least one key."""
    keys = section.principal_keys()
    return {
        name: Principal(name, frozenset(p.classes), tuple(k.encode() for k in keys[name]))
        for name, p in section.principals.items()
        if keys.get(name)
    }


class MqttCommands:
    def __init__(
        self,
        router: CommandRouter,
        reply: Callable[[ReplyTo, dict[str, Any]], None],
        audience: str,
        signers: Mapping[str, Principal],
        window: Window,
        seen: SeenRequests,
        tokens: dict[str, SecretStr | None] | None = None,
        clock: Callable[[], float] = time.time,
        delivery: DeliveryHandler | None = None,
    ) -> None:
        self._router = router
        self._reply = reply
        self._audience = audience
        self._signers = dict(signers)
        self._window = window
        self._seen = seen
        self._tokens = tokens
        self._clock = clock
        self._delivery = delivery
        self._unproven = RefusalLimit()
        self._closed = False

    @classmethod
    def from_settings(
        cls,
        router: CommandRouter,
        reply: Callable[[ReplyTo, dict[str, Any]], None],
        audience: str,
        section: CommandsSection,
        data_dir: Path,
        delivery: DeliveryHandler | None = None,
    ) -> MqttCommands:
        signers = principals(section)
        for name in sorted(section.principals.keys() - signers.keys()):
            _logger.warning("commands: principal %s has no key; it cannot sign commands", name)
        if section.shared_tokens:
            _logger.warning(
                "commands: the unsigned shared-token form is on ([commands] shared_tokens):"
                " its secret travels in clear and its 'by' is unchecked; sign commands instead"
            )
        window = Window(section.window, section.skew)
        seen = SeenRequests(data_dir / FILE_NAME)
        tokens = section.tokens() if section.shared_tokens else None
        return cls(router, reply, audience, signers, window, seen, tokens, delivery=delivery)

    def close(self) -> None:
        self._closed = True
        self._seen.close()

    def __call__(self, name: str, payload: bytes, to: ReplyTo) -> None:
        if self._closed:
            self._reply(to, {"id": None, "ok": False, "error": "the gateway is stopping"})
            return
        request_id: Any = None
        try:
            message = json.loads(payload)
            if not isinstance(message, dict):
                raise ValueError("the payload must be a JSON object")
            if "jws" not in message and self._tokens is None:
                raise ValueError('a command must be signed: {"jws": ...} (docs/uplink.md)')
            if "jws" in message and message.keys() != {"jws"}:
                raise ValueError('a signed command is {"jws": ...} and nothing else')
            request_id = message.get("id")
            args = message.get("args", {})
            if not isinstance(args, dict):
                raise ValueError("args must be a JSON object")
        except (ValueError, RecursionError) as err:
            self._refuse(name, to, Refused(f"malformed: {err}", _plain(request_id)))
            return
        if "jws" in message:
            self._signed(name, message["jws"], to)
        else:
            self._shared_token(name, message, args, to)

    def _signed(self, name: str, token: object, to: ReplyTo) -> None:
        now = self._clock()
        verified = verify(token, name, self._audience, self._signers, self._window, now)
        if isinstance(verified, Refused):
            self._refuse(name, to, verified)
            return
        try:
            replayed = self._seen.first_use(
                verified.principal,
                verified.id,
                verified.nonce,
                self._window.until(verified.issued_at),
                now,
            )
        except (sqlite3.Error, OSError) as err:  # cannot remember it: cannot run it only once
            replayed = f"cannot record the request's nonce, try again: {err}"
        if replayed is not None:
            self._refuse(name, to, Refused(replayed, verified.id, verified.principal))
            return
        self._reply(to, {"id": verified.id, **self._run(name, verified.args, verified.principal)})

    def _run(self, name: str, args: dict[str, Any], principal: str) -> dict[str, Any]:
        if name in DELIVERY_COMMANDS and self._delivery is not None:
            return self._delivery(name, args)  # the uplink's own; they make no event
        return self._router.handle(name, args, CHANNEL, principal)

    def _refuse(self, name: str, to: ReplyTo, refused: Refused) -> None:
        self._reply(to, {"id": refused.id, "ok": False, "error": refused.reason})
        if refused.principal or self._unproven.admit(name, refused.reason, steady()):
            self._router.refuse(name, {}, CHANNEL, refused.reason, refused.principal)

    def _shared_token(
        self, name: str, message: dict[str, Any], args: dict[str, Any], to: ReplyTo
    ) -> None:
        request_id = message.get("id")
        refusal = self._authorise(name, message.get("token"))
        if refusal is not None:
            self._router.refuse(name, args, CHANNEL, refusal)
            self._reply(to, {"id": request_id, "ok": False, "error": refusal})
            return
        self._reply(to, {"id": request_id, **self._run(name, args, "")})

    def _authorise(self, name: str, token: Any) -> str | None:
        assert self._tokens is not None
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


class RefusalLimit:
    """Audit events for refusals of requests whose signature did not verify: at most one
    per command and reason every ``every`` seconds (steady clock). Anyone who can publish
    to ``commands/#`` could otherwise fill the event log, and with ``delivery = "wms"``
    keep it from draining. What is left out is counted in the journal; every request
    still gets its reply."""

    def __init__(self, every: float = 10.0) -> None:
        self._every = every
        self._said: dict[tuple[str, str], tuple[float, int]] = {}  # -> (when, left out)

    def admit(self, command: str, reason: str, now: float) -> bool:
        key = (command, reason)
        when, left_out = self._said.get(key, (float("-inf"), 0))
        if now - when < self._every:
            self._said[key] = (when, left_out + 1)
            return False
        if left_out:
            _logger.warning(
                "commands: %d more %s requests refused (%s) without an event of their own",
                left_out,
                command,
                reason,
            )
        self._said[key] = (now, 0)
        if len(self._said) > 1000:  # bounded: drop the oldest
            del self._said[min(self._said, key=lambda k: self._said[k][0])]
        return True


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int) else None

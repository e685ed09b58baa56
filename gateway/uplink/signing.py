"""Signed commands: who sent a command over MQTT, proven, and for this gateway only.

A signed request is a JSON Web Signature (RFC 7515, compact serialisation, ``HS256``:
HMAC-SHA256) whose protected header names the signing principal as ``kid`` and whose
payload holds the whole request::

    header  {"alg": "HS256", "kid": "wms-main"}
    payload {"aud": "cellsafe/plant-a/gw-01", "cmd": "ack", "id": "r-1001",
             "args": {"alarm": "cell-store.h2.high"}, "iat": 1764460800,
             "nonce": "5f0c9f1e2a7b4d3c"}

published as ``{"jws": "<header>.<payload>.<signature>"}`` on ``commands/<cmd>``. The
key never travels; it belongs to the principal, who may hold two at once while keys are
rotated. The signed bytes are the ones sent, so there is no canonical JSON to agree on:
any JWT library signs it.

Everything here is a pure function of its arguments: :func:`verify` is given the wall
clock's ``now`` (``iat`` is a timestamp from another machine, so the steady clock would
mean nothing) and returns :class:`Verified` or :class:`Refused`, never raising on
whatever bytes arrive. Whether a nonce or id was seen before is the replay store's
business (``gateway.uplink.replay``).
"""

from __future__ import annotations

import math
import re
import secrets
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.types import Options

from gateway.core.commands import ALARM_COMMANDS, SAFETY_COMMANDS

ALGORITHM = "HS256"
CLASSES = ("alarm", "status", "config", "safety", "delivery", "stock")
# The WMS's material master and locations, a retained downlink (gateway.core.stock).
STOCK_MASTER = "stock-master"
# The WMS's confirmations with [mqtt] delivery = "wms", answered by the MQTT uplink itself.
DELIVERY_COMMANDS = ("confirm", "resend")
MAX_TOKEN_LENGTH = 16_384
_ID = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_CLAIMS = frozenset({"aud", "cmd", "id", "args", "iat", "nonce"})
# The claims are checked here, with reasons of our own and the caller's clock.
_NO_CLAIM_CHECKS = Options(
    verify_aud=False,
    verify_exp=False,
    verify_iat=False,
    verify_iss=False,
    verify_jti=False,
    verify_nbf=False,
    verify_sub=False,
)


def command_class(name: str) -> str:
    """The class a command belongs to, which a principal must be allowed to use."""
    if name in DELIVERY_COMMANDS:
        return "delivery"
    if name == STOCK_MASTER:
        return "stock"
    if name in ALARM_COMMANDS:
        return "alarm"
    if name in SAFETY_COMMANDS:
        return "safety"
    return "config" if name == "reload" else name


@dataclass(frozen=True, slots=True)
class Principal:
    """A named signer (a WMS service, an operator), its command classes and its keys."""

    name: str
    classes: frozenset[str]
    keys: tuple[bytes, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Verified:
    principal: str
    id: str
    nonce: str
    issued_at: float
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a request was refused; ``principal`` only once its signature was verified."""

    reason: str
    id: Any = None
    principal: str = ""


@dataclass(frozen=True, slots=True)
class Window:
    """How old a request may be (``window``) and how far clocks may disagree (``skew``)."""

    window: float = 60.0
    skew: float = 5.0

    def refusal(self, issued_at: float, now: float) -> str | None:
        age = now - issued_at
        if age < -self.skew:
            return f"issued in the future: iat is {-age:.0f} s ahead of the gateway's clock"
        if age > self.window + self.skew:
            return (
                f"expired: issued {age:.0f} s ago; the window is {self.window:g} s"
                f" (+ {self.skew:g} s for clock skew)"
            )
        return None

    def until(self, issued_at: float) -> float:
        """Wall-clock time after which the request is expired anyway: forget it then."""
        return issued_at + self.window + self.skew


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def sign(
    key: bytes,
    principal: str,
    audience: str,
    command: str,
    args: Mapping[str, Any],
    *,
    request_id: str,
    issued_at: int,
    nonce: str,
) -> str:
    """The compact JWS of one request, as a WMS would make it."""
    claims = {
        "aud": audience,
        "cmd": command,
        "id": request_id,
        "args": dict(args),
        "iat": issued_at,
        "nonce": nonce,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": principal})


def verify(
    token: object,
    command: str,
    audience: str,
    principals: Mapping[str, Principal],
    window: Window,
    now: float,
    max_length: int = MAX_TOKEN_LENGTH,
) -> Verified | Refused:
    """Check a request's signature, target, class and age; never raises on bad input.

    ``command`` is the one named by the topic it arrived on, ``audience`` this gateway's
    topic base; ``now`` is the wall clock (seconds since the epoch); ``max_length``: the
    longest token taken, in characters.
    """
    if isinstance(token, str) and len(token) > max_length:
        return Refused(f"malformed: the JWS is longer than {max_length} characters")
    if not isinstance(token, str) or not token:
        return Refused("malformed: 'jws' must be a compact JWS string")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options=Options(verify_signature=False, **_NO_CLAIM_CHECKS))
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as err:
        return Refused(f"malformed: not a compact JWS ({type(err).__name__})")
    request_id = unverified.get("id") if isinstance(unverified.get("id"), str | int) else None
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM:
        return Refused(f"not signed with {ALGORITHM}", request_id)
    if not isinstance(kid, str) or kid not in principals:
        return Refused(f"unknown principal {str(kid)[:64]!r} in the header's kid", request_id)
    principal = principals[kid]
    claims = _checked(token, principal.keys)
    if claims is None:
        return Refused(f"signature does not match a key of principal {kid!r}", request_id)
    by = principal.name
    problem = _claims_problem(claims, command, audience)
    if problem is not None:
        return Refused(problem, request_id, by)
    request_id, args = claims["id"], dict(claims["args"])
    klass = command_class(command)
    if klass in CLASSES and klass not in principal.classes:
        return Refused(f"principal {by!r} may not use {klass} commands", request_id, by)
    stale = window.refusal(float(claims["iat"]), now)
    if stale is not None:
        return Refused(stale, request_id, by)
    if args.get("by", by) != by:
        return Refused(f"args.by must be the signing principal {by!r} or left out", request_id, by)
    return Verified(by, request_id, claims["nonce"], float(claims["iat"]), {**args, "by": by})


def _checked(token: str, keys: tuple[bytes, ...]) -> dict[str, Any] | None:
    for key in keys:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # short keys are refused by the config
                claims: dict[str, Any] = jwt.decode(
                    token, key, algorithms=[ALGORITHM], options=_NO_CLAIM_CHECKS
                )
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            continue
        return claims
    return None


def _claims_problem(claims: dict[str, Any], command: str, audience: str) -> str | None:
    missing = sorted(_CLAIMS - claims.keys())
    if missing:
        return f"malformed: missing claims {', '.join(missing)}"
    if claims["cmd"] != command:
        return f"signed for command {str(claims['cmd'])[:64]!r}, published as {command!r}"
    if claims["aud"] != audience:
        return f"signed for {str(claims['aud'])[:200]!r}, not for this gateway"
    if not isinstance(claims["id"], str) or not _ID.match(claims["id"]):
        return "malformed: id must be 1 to 128 printable ASCII characters"
    if not isinstance(claims["nonce"], str) or not _NONCE.match(claims["nonce"]):
        return "malformed: nonce must be 16 to 128 URL-safe base64 characters"
    iat = claims["iat"]
    if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
        return "malformed: iat must be a number of seconds since the epoch"
    if not isinstance(claims["args"], dict):
        return "malformed: args must be a JSON object"
    return None

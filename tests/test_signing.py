"""The verifier of signed commands and the store of used nonces, as pure parts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.uplink.commands import RefusalLimit
from gateway.uplink.replay import SeenRequests
from gateway.uplink.signing import Principal, Refused, Verified, Window, sign, verify

AUDIENCE = "cellsafe/plant-a/gw-01"
OLD_KEY = b"o" * 32
NEW_KEY = b"n" * 40
PRINCIPALS = {
    "wms-main": Principal("wms-main", frozenset({"alarm", "status"}), (OLD_KEY, NEW_KEY)),
    "shift-lead": Principal("shift-lead", frozenset({"safety"}), (b"s" * 32,)),
}
NOW = 1_764_460_800.0
WINDOW = Window(60.0, 5.0)
ACK = {"alarm": "cell-store.h2.high"}


def request(
    command: str = "ack",
    args: dict[str, Any] | None = None,
    key: bytes = NEW_KEY,
    principal: str = "wms-main",
    issued_at: int = int(NOW),
    request_id: str = "r-1",
    audience: str = AUDIENCE,
) -> str:
    return sign(
        key,
        principal,
        audience,
        command,
        ACK if args is None else args,
        request_id=request_id,
        issued_at=issued_at,
        nonce="n0nce-n0nce-n0nce",
    )


def check(token: object, command: str = "ack", now: float = NOW) -> Verified | Refused:
    return verify(token, command, AUDIENCE, PRINCIPALS, WINDOW, now)


def test_a_good_request_names_its_principal_as_by() -> None:
    result = check(request())
    assert result == Verified(
        "wms-main", "r-1", "n0nce-n0nce-n0nce", NOW, {**ACK, "by": "wms-main"}
    )


def test_both_keys_of_a_principal_are_good_while_it_rotates() -> None:
    assert isinstance(check(request(key=OLD_KEY)), Verified)
    assert isinstance(check(request(key=NEW_KEY)), Verified)
    refused = check(request(key=b"x" * 32))
    assert refused == Refused("signature does not match a key of principal 'wms-main'", "r-1")


def test_a_tampered_argument_breaks_the_signature() -> None:
    header, payload, signature = request().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["args"]["alarm"] = "cell-store.smoke"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    result = check(f"{header}.{forged}.{signature}")
    assert isinstance(result, Refused) and result.reason.startswith("signature does not match")
    assert result.principal == ""  # nobody proven: the audit names no one


def test_a_principal_may_use_only_its_classes() -> None:
    override = {"relay": "deluge", "state": "off", "duration": 60, "reason": "test"}
    result = check(request("override", override), "override")
    assert result == Refused("principal 'wms-main' may not use safety commands", "r-1", "wms-main")
    lead = request("override", override, key=b"s" * 32, principal="shift-lead")
    assert isinstance(check(lead, "override"), Verified)


def test_issued_at_must_be_inside_the_window() -> None:
    assert isinstance(check(request(), now=NOW + 65), Verified)  # window + skew
    expired = check(request(), now=NOW + 66)
    assert isinstance(expired, Refused) and expired.reason.startswith("expired: issued 66 s ago")
    assert expired.principal == "wms-main"
    assert isinstance(check(request(), now=NOW - 5), Verified)
    future = check(request(), now=NOW - 6)
    assert isinstance(future, Refused) and future.reason.startswith("issued in the future")


def test_the_signature_binds_command_and_gateway() -> None:
    moved = check(request("ack"), "reset")
    assert isinstance(moved, Refused) and moved.reason.startswith("signed for command 'ack'")
    elsewhere = check(request(audience="cellsafe/plant-a/gw-02"))
    assert isinstance(elsewhere, Refused) and "not for this gateway" in elsewhere.reason


def test_by_in_the_args_cannot_name_someone_else() -> None:
    result = check(request(args={**ACK, "by": "shift-lead"}))
    assert isinstance(result, Refused) and result.reason.startswith("args.by must be")
    assert isinstance(check(request(args={**ACK, "by": "wms-main"})), Verified)


def test_other_algorithms_and_unknown_principals_are_refused() -> None:
    unsigned = jwt.encode({"cmd": "ack"}, "", algorithm="none", headers={"kid": "wms-main"})
    assert check(unsigned) == Refused("not signed with HS256")
    unknown = check(request(principal="nobody"))
    assert isinstance(unknown, Refused) and unknown.reason.startswith("unknown principal 'nobody'")


def test_missing_claims_are_named() -> None:
    token = jwt.encode({"cmd": "ack", "aud": AUDIENCE}, NEW_KEY, headers={"kid": "wms-main"})
    result = check(token)
    assert isinstance(result, Refused)
    assert result.reason == "malformed: missing claims args, iat, id, nonce"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@settings(max_examples=300, deadline=None)
@given(st.one_of(_json, st.text(), st.binary().map(lambda b: b.decode("latin-1"))))
def test_random_input_never_raises(token: Any) -> None:
    assert isinstance(check(token), Refused)


@settings(max_examples=300, deadline=None)
@given(
    header=st.one_of(_json, st.fixed_dictionaries({"alg": st.just("HS256"), "kid": _json})),
    claims=st.one_of(
        _json,
        st.fixed_dictionaries(
            {
                "aud": st.one_of(st.just(AUDIENCE), _json),
                "cmd": st.one_of(st.just("ack"), _json),
                "id": _json,
                "args": _json,
                "iat": st.one_of(st.just(NOW), _json),
                "nonce": _json,
            }
        ),
    ),
    key=st.sampled_from([NEW_KEY, OLD_KEY, b"x" * 32]),
)
def test_malformed_but_well_encoded_requests_never_raise(
    header: Any, claims: Any, key: bytes
) -> None:
    """Whatever JSON sits in the header and payload, signed or not, the verifier answers."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())
    result = check(f"{signing_input}.{signature}")
    assert isinstance(result, Refused | Verified)
    if isinstance(result, Verified):
        assert result.principal == "wms-main" and key != b"x" * 32


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_a_flipped_byte_is_refused(noise: bytes) -> None:
    token = request()
    position = noise[0] % len(token)
    replacement = "A" if token[position] != "A" else "B"
    mangled = token[:position] + replacement + token[position + 1 :]
    result = check(mangled)
    # base64url's last character can carry unused bits: decoding to the same bytes is fine
    if isinstance(result, Verified):
        assert result == check(token)


def test_a_nonce_and_an_id_are_used_once_also_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "seen.sqlite3"
    with SeenRequests(path) as seen:
        assert seen.first_use("wms-main", "r-1", "nonce-1", until=NOW + 65, now=NOW) is None
        assert seen.first_use("wms-main", "r-1", "nonce-2", NOW + 65, NOW) == (
            "replayed: this id was already used within the window"
        )
        assert seen.first_use("shift-lead", "r-1", "nonce-3", NOW + 65, NOW) is None
    with SeenRequests(path) as seen:
        assert seen.first_use("wms-main", "r-2", "nonce-1", NOW + 65, NOW + 1) == (
            "replayed: this nonce was already used within the window"
        )
        # once the window is over the entries go: such a request is refused as expired
        assert seen.first_use("wms-main", "r-9", "nonce-9", NOW + 200, NOW + 66) is None
        assert len(seen) == 2


def test_a_store_that_cannot_be_written_raises_only_when_used(tmp_path: Path) -> None:
    (tmp_path / "not-a-directory").write_text("")
    seen = SeenRequests(tmp_path / "not-a-directory" / "seen.sqlite3")  # no error yet
    with pytest.raises((OSError, sqlite3.Error)):
        seen.first_use("wms-main", "r-1", "nonce-1", NOW + 65, NOW)
    seen.close()


def test_refusals_of_unproven_requests_are_audited_at_most_once_per_window() -> None:
    limit = RefusalLimit(every=10.0)
    said = [limit.admit("ack", "signature does not match", t) for t in (0.0, 1.0, 9.0, 10.0)]
    assert said == [True, False, False, True]
    assert limit.admit("ack", "another reason", 1.0)  # each reason has its own window
    assert limit.admit("reset", "signature does not match", 1.0)  # and each command

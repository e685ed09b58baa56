"""Basic256Sha256: SignAndEncrypt with a user login works; every refusal says why, naming
the device; the password never reaches the log."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from drivers.opcua import State
from tests.drivers.opcua.conftest import PASSWORD, USER, PanelHost, Pki
from tests.drivers.opcua.helpers import config, running
from vocab.samples import Quality

STATE = {"key": "z1_state", "node_id": "ns=2;s=Zone1.State"}


def secured(pki: Pki, trust: Path | None = None, mode: str = "SignAndEncrypt") -> dict[str, Any]:
    return {
        "policy": "Basic256Sha256",
        "mode": mode,
        "certificate": str(pki.gateway_cert),
        "private_key": str(pki.gateway_key),
        "trust_dir": str(trust or pki.trust),
    }


def login(env: str = "PANEL_PASSWORD") -> dict[str, Any]:
    return {"type": "username", "username": USER, "password_env": env}


def test_sign_and_encrypt_with_a_user_login(
    secure_panel: PanelHost, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANEL_PASSWORD", PASSWORD)
    cfg = config(secure_panel.endpoint, security=secured(pki), identity=login(), points=[STATE])

    async def go() -> None:
        async with running(cfg) as (driver, rec):
            assert driver.state is State.CONNECTED, driver.last_error
            await rec.wait(lambda: rec.last("panel.z1_state") is not None)
            assert rec.last("panel.z1_state").quality is Quality.GOOD  # type: ignore[union-attr]

    asyncio.run(go())


def test_password_from_a_credential_file(
    secure_panel: PanelHost, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "panel_password").write_text(PASSWORD + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    identity = {"type": "username", "username": USER, "password_file": "panel_password"}
    cfg = config(secure_panel.endpoint, security=secured(pki), identity=identity, points=[STATE])

    async def go() -> None:
        async with running(cfg) as (driver, _):
            assert driver.state is State.CONNECTED, driver.last_error

    asyncio.run(go())


def refused(cfg: Any) -> tuple[State, str, list[str]]:
    """The driver's state and error after its first attempt, and the points' reasons."""

    async def go() -> tuple[State, str, list[str]]:
        async with running(cfg) as (driver, rec):
            reasons = [s.reason or "" for s in rec.got]
            return driver.state, driver.last_error or "", reasons

    return asyncio.run(go())


def test_an_untrusted_server_certificate_is_refused(
    secure_panel: PanelHost, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANEL_PASSWORD", PASSWORD)
    sec = secured(pki, trust=pki.other_trust)
    state, error, reasons = refused(
        config(secure_panel.endpoint, security=sec, identity=login(), points=[STATE])
    )
    assert state is State.REFUSED
    assert error == (
        "device panel: the server's certificate is not trusted: put it (or its issuer's) in "
        f"the trust list {pki.other_trust} (BadCertificateUntrusted)"
    )
    assert reasons and all(r == error for r in reasons)  # the points are bad, saying why


def test_an_expired_server_certificate_is_refused(
    expired_panel: PanelHost, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANEL_PASSWORD", PASSWORD)
    state, error, _ = refused(
        config(expired_panel.endpoint, security=secured(pki), identity=login(), points=[STATE])
    )
    assert state is State.REFUSED
    assert error.startswith("device panel: a certificate is outside its validity period")
    assert error.endswith("(BadCertificateTimeInvalid)")


def test_a_wrong_password_is_refused_and_never_logged(
    secure_panel: PanelHost,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PANEL_PASSWORD", "not-the-password")
    caplog.set_level(logging.DEBUG)
    state, error, _ = refused(
        config(secure_panel.endpoint, security=secured(pki), identity=login(), points=[STATE])
    )
    assert state is State.REFUSED
    assert error.startswith("device panel: user name or password refused (Bad")
    assert "not-the-password" not in caplog.text


def test_a_missing_password_is_named(secure_panel: PanelHost, pki: Pki) -> None:
    state, error, _ = refused(
        config(
            secure_panel.endpoint,
            security=secured(pki),
            identity=login("PANEL_PASSWORD_UNSET"),
            points=[STATE],
        )
    )
    assert state is State.REFUSED
    assert error == (
        f"device panel: no password for {USER!r}: "
        "environment variable PANEL_PASSWORD_UNSET is not set"
    )


def test_an_unsupported_policy_is_refused(secure_panel: PanelHost, pki: Pki) -> None:
    # The panel offers Basic256Sha256 with SignAndEncrypt only.
    state, error, _ = refused(
        config(secure_panel.endpoint, security=secured(pki, mode="Sign"), points=[STATE])
    )
    assert state is State.REFUSED
    assert error == (
        f"device panel: the server at {secure_panel.endpoint} offers no endpoint with "
        "policy Basic256Sha256 and mode Sign"
    )


def test_no_security_against_a_secured_server_is_refused(secure_panel: PanelHost) -> None:
    state, error, _ = refused(config(secure_panel.endpoint, points=[STATE]))
    assert state is State.REFUSED
    assert error == (
        f"device panel: the server at {secure_panel.endpoint} offers no endpoint with "
        "policy None and mode None"
    )


def test_a_user_certificate_as_identity(secure_panel: PanelHost, pki: Pki) -> None:
    identity = {
        "type": "certificate",
        "certificate": str(pki.user_cert),
        "private_key": str(pki.user_key),
    }
    cfg = config(secure_panel.endpoint, security=secured(pki), identity=identity, points=[STATE])

    async def go() -> None:
        async with running(cfg) as (driver, _):
            assert driver.state is State.CONNECTED, driver.last_error

    asyncio.run(go())


def test_an_unknown_user_certificate_is_refused(secure_panel: PanelHost, pki: Pki) -> None:
    identity = {
        "type": "certificate",
        "certificate": str(pki.gateway_cert),  # a certificate the panel knows no user for
        "private_key": str(pki.gateway_key),
    }
    state, error, _ = refused(
        config(secure_panel.endpoint, security=secured(pki), identity=identity, points=[STATE])
    )
    assert state is State.REFUSED
    assert error.startswith(
        f"device panel: the user certificate {pki.gateway_cert} was refused (Bad"
    ), error


def test_an_anonymous_session_is_refused_where_users_are_required(
    secure_panel: PanelHost, pki: Pki
) -> None:
    state, error, _ = refused(config(secure_panel.endpoint, security=secured(pki), points=[STATE]))
    assert state is State.REFUSED
    assert error.startswith(
        "device panel: anonymous sessions are refused: give a user name or a user certificate"
    ), error

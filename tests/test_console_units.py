"""The console's parts without a browser: accounts, sessions, CSRF, languages, the
config table, the CLI that writes accounts, and the API document against the routes."""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import ssl
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.cli import console_user as console_user_cli
from gateway.config import ConfigError, load_settings
from gateway.config.console import ConsoleSection, ConsoleTls, is_loopback
from gateway.console import csrf
from gateway.console.app import STATIC, make_app, tls_context
from gateway.console.auth import (
    ALLOWED,
    User,
    Users,
    UsersFileError,
    hash_password,
    parse_users,
)
from gateway.console.i18n import CATALOGUES, EN, ZH, choose, from_accept_language
from gateway.console.openapi import document
from gateway.console.routes import Api
from gateway.console.sessions import Sessions
from gateway.core.commands import COMMANDS
from tests.lab import ROOT, cli, http_app, write_config
from tests.pki import make_pki


def console_user(*args: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "console-user", *args, "--password-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def users() -> Users:
    return Users({"olga": User("olga", "operator", "zh", hash_password("correct horse"))})


# -- accounts ----------------------------------------------------------------------------


def test_a_password_is_verified_against_its_argon2id_hash(users: Users) -> None:
    user = users.get("olga")
    assert user is not None and user.hash.startswith("$argon2id$")
    assert "correct horse" not in user.hash
    assert users.verify("olga", "correct horse") == user
    assert users.verify("olga", "wrong horse") is None
    assert users.verify("nobody", "correct horse") is None


def test_roles_allow_what_the_documentation_says() -> None:
    assert ALLOWED["viewer"] == frozenset()
    assert {"ack", "shelve", "unshelve", "reset"} <= ALLOWED["operator"]
    assert "override" not in ALLOWED["operator"]
    assert ALLOWED["operator"] < ALLOWED["engineer"]
    assert ALLOWED["engineer"] <= set(COMMANDS)  # every one is a CommandRouter command
    assert "reload" not in ALLOWED["engineer"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("olga:operator:zh", "expected name:role:lang:hash"),
        ("Olga:operator::$argon2id$x", "name 'Olga'"),
        ("olga:admin::$argon2id$x", "role 'admin'"),
        ("olga:operator:fr:$argon2id$x", "lang 'fr'"),
        ("olga:operator::secret", "the hash is not an argon2 hash"),
    ],
)
def test_a_bad_users_line_is_named_by_file_and_line(line: str, problem: str) -> None:
    with pytest.raises(UsersFileError, match=re.escape(f"users:2: {problem}")):
        parse_users("# accounts\n" + line + "\n", "users")


def test_the_cli_writes_only_a_hash_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "users"
    done = console_user("--file", str(path), "olga", "--role", "operator", password="correct horse")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "correct horse" not in path.read_text()
    assert Users.load(path).verify("olga", "correct horse") is not None
    short = console_user("--file", str(path), "vera", password="short")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    gone = cli("console-user", "--file", str(path), "olga", "--delete")
    assert gone.returncode == 0 and len(Users.load(path)) == 0


# -- sessions and CSRF -------------------------------------------------------------------


def test_a_session_ends_when_idle_and_after_its_lifetime(users: Users) -> None:
    user = users.get("olga")
    assert user is not None
    sessions = Sessions(idle=60.0, lifetime=300.0)
    session = sessions.start(user, now=1000.0)
    assert session.lang == "zh" and len(session.csrf) >= 40
    assert sessions.get(session.token, 1059.0) is session  # touched: idle counts from here
    assert sessions.get(session.token, 1118.0) is session
    assert sessions.get(session.token, 1179.0) is None  # 61 s idle
    assert sessions.get(session.token, 1180.0) is None  # and gone for good

    busy = sessions.start(user, now=2000.0)
    for now in range(2050, 2300, 50):
        assert sessions.get(busy.token, float(now)) is busy
    assert sessions.get(busy.token, 2301.0) is None  # active, but past its lifetime
    assert sessions.get("forged", 2000.0) is None and sessions.get(None, 2000.0) is None


def test_sessions_are_capped_and_the_least_recent_goes(users: Users) -> None:
    user = users.get("olga")
    assert user is not None
    sessions = Sessions(idle=60.0, lifetime=300.0, cap=2)
    first, second = sessions.start(user, 1.0), sessions.start(user, 2.0)
    sessions.get(first.token, 3.0)
    third = sessions.start(user, 4.0)
    assert len(sessions) == 2 and sessions.get(second.token, 5.0) is None
    assert sessions.get(first.token, 5.0) is first and sessions.get(third.token, 5.0) is third


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({"X-CSRF-Token": "t0ken"}, None),
        ({"X-CSRF-Token": "t0ken", "Origin": "http://127.0.0.1:8443"}, None),
        ({}, "no X-CSRF-Token header"),
        ({"X-CSRF-Token": "t0kem"}, "wrong X-CSRF-Token"),
        ({"X-CSRF-Token": "t0ken", "Origin": "http://evil.example"}, "is not this console"),
        ({"X-CSRF-Token": "t0ken", "Origin": "null"}, "is not this console"),
    ],
)
def test_csrf_needs_the_session_token_from_the_same_origin(
    headers: dict[str, str], refused: str | None
) -> None:
    why = csrf.refusal("t0ken", headers, "http", "127.0.0.1:8443")
    assert why == refused if refused is None else refused in str(why)


# -- languages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-GB,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR, zh-Hans;q=0.5, en;q=0.4", "zh"),
        ("de, fr", None),
        ("zh;q=0, en;q=0.1", "en"),
        (None, None),
    ],
)
def test_the_browser_language_by_q_value(header: str | None, expected: str | None) -> None:
    assert from_accept_language(header) == expected


def test_the_choice_in_the_console_wins_over_the_browser() -> None:
    assert choose("en", "zh-CN", "zh") == "en"
    assert choose("", "zh-CN", "en") == "zh"
    assert choose("", "de", "zh") == "zh"


def test_both_catalogues_cover_every_text_the_page_asks_for() -> None:
    assert EN.keys() == ZH.keys()
    page = (STATIC / "app.js").read_text() + (STATIC / "index.html").read_text()
    asked = set(re.findall(r'\bT\("([a-z_]+)"\)', page)) | set(
        re.findall(r'data-t="([a-z_]+)"', page)
    )
    composed = {"p_" + p for p in ("critical", "high", "medium", "low")}
    composed |= {k for k in EN if k.startswith("s_")} | {"temperature", "humidity", "gas", "smoke"}
    assert asked, "the page asks for no text: the pattern is wrong"
    assert asked - EN.keys() == set()
    assert all(CATALOGUES[lang][key] for lang in CATALOGUES for key in asked | composed)


# -- configuration -----------------------------------------------------------------------


def _config(tmp_path: Path, console: dict[str, Any]) -> Path:
    data = tomllib.loads((ROOT / "config" / "example.toml").read_text())
    data["gateway"]["data_dir"] = str(tmp_path / "state")
    data["console"] = console
    return write_config(tmp_path, data)


def test_a_console_beyond_loopback_without_tls_is_refused(tmp_path: Path) -> None:
    users = str(tmp_path / "users")
    with pytest.raises(ConfigError, match=r"console: .*users_file .* is not a readable file"):
        load_settings(_config(tmp_path, {"listen": "127.0.0.1:8443", "users_file": users}))
    (tmp_path / "users").write_text("")
    with pytest.raises(ConfigError) as err:
        load_settings(_config(tmp_path, {"listen": "0.0.0.0:8443", "users_file": users}))
    assert "console" in str(err.value) and "beyond loopback" in str(err.value)
    with pytest.raises(ConfigError, match="users_file"):
        load_settings(_config(tmp_path, {"listen": "127.0.0.1:8443"}))
    with pytest.raises(ConfigError, match=r"console.*lisen"):
        load_settings(_config(tmp_path, {"lisen": "127.0.0.1:8443"}))
    settings = load_settings(_config(tmp_path, {"listen": "127.0.0.1:8443", "users_file": users}))
    assert settings.console.host_port == ("127.0.0.1", 8443)


def test_tls_lets_a_console_listen_beyond_loopback(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")
    tls = {"cert_file": str(cert), "key_file": str(key)}
    (tmp_path / "u").write_text("")
    section = ConsoleSection(listen="0.0.0.0:8443", users_file=tmp_path / "u", tls=tls)
    assert section.tls is not None
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")


# -- the API document --------------------------------------------------------------------


def test_every_route_is_documented_and_every_documented_path_is_served() -> None:
    app = make_app(Api.__new__(Api), secure=False)
    served = {
        (r.method.lower(), re.sub(r"\{(\w+)\}", r"{\1}", r.resource.canonical))
        for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/")
        and r.method != "HEAD"
    }  # fmt: skip
    documented = {(method, path) for path, item in document()["paths"].items() for method in item}
    assert served == documented
    assert isinstance(app, web.Application)


def test_the_console_serves_https_with_the_configured_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    (tmp_path / "users").write_text("")
    section = ConsoleSection(
        listen="127.0.0.1:1",
        users_file=tmp_path / "users",
        tls=ConsoleTls(cert_file=pki.server_cert, key_file=pki.server_key),
    )
    context = tls_context(section)
    assert context is not None

    async def fetch() -> tuple[int, dict[str, str], str]:
        async with http_app(make_app(Api.__new__(Api), secure=True), context) as port:
            trust = ssl.create_default_context(cafile=str(pki.ca))
            async with aiohttp.ClientSession() as client:
                url = f"https://127.0.0.1:{port}/api/openapi.json"
                async with client.get(url, ssl=trust) as response:
                    body = await response.json()
                    status, headers = response.status, dict(response.headers)
                with pytest.raises(aiohttp.ClientError):
                    await client.get(f"http://127.0.0.1:{port}/api/openapi.json")
            return status, headers, str(body["openapi"])

    status, headers, version = asyncio.run(fetch())
    assert (status, version) == (200, "3.1.0")
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_a_new_password_alone_keeps_the_accounts_role_and_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = argparse.ArgumentParser()
    console_user_cli.add_parser(parser.add_subparsers())
    path = tmp_path / "users"

    def run(*args: str, password: str) -> int:
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
        return console_user_cli.run(
            parser.parse_args(["console-user", "--file", str(path), *args, "--password-stdin"])
        )

    assert run("eric", "--role", "engineer", "--lang", "zh", password="first-password") == 0
    assert run("eric", password="second-password") == 0  # a new password, nothing else
    eric = Users.load(path).get("eric")
    assert eric is not None and (eric.role, eric.lang) == ("engineer", "zh")
    assert Users.load(path).verify("eric", "second-password") is not None
    assert run("vera", password="vera-password") == 0  # a new account: viewer, browser
    vera = Users.load(path).get("vera")
    assert vera is not None and (vera.role, vera.lang) == ("viewer", "")
    assert run("eric", "--role", "operator", "--lang", "", password="third-password") == 0
    eric = Users.load(path).get("eric")
    assert eric is not None and (eric.role, eric.lang) == ("operator", "")

"""Signed MQTT commands against the real thing: Mosquitto and the gateway as a process."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.uplink.signing import Principal, Verified, Window, new_nonce, sign, verify
from simulators.mosquitto import MosquittoBroker
from tests.conftest import Lab
from tests.lab import ROOT, cli, quiet_scenario, wait_until, write_config
from tests.test_alarm_scenarios import CommandClient
from tests.test_uplink_security import config, wait_for_socket

BASE = "cellsafe/plant-a/gw-01"
OLD_KEY = "wms-main-old-key-0123456789abcdef0123"
NEW_KEY = "wms-main-new-key-0123456789abcdef0123"
LEAD_KEY = "shift-lead-key-0123456789abcdef012345"
KEYS = {
    "CELLSAFE_COMMANDS__KEYS__WMS_MAIN": f"{OLD_KEY},{NEW_KEY}",
    "CELLSAFE_COMMANDS__KEYS__SHIFT_LEAD": LEAD_KEY,
}
OVERRIDE = {"relay": "cell-deluge", "state": "off", "duration": 600, "reason": "test"}


def signed(
    key: str,
    principal: str,
    command: str,
    args: dict[str, Any],
    request_id: str,
    issued_at: float | None = None,
) -> dict[str, Any]:
    token = sign(
        key.encode(),
        principal,
        BASE,
        command,
        args,
        request_id=request_id,
        issued_at=int(time.time() if issued_at is None else issued_at),
        nonce=new_nonce(),
    )
    return {"jws": token}


def principals_config(tmp_path: Path, port: int, sim_port: int) -> Path:
    path = config(tmp_path, sim_port, {"port": port})
    data = tomllib.loads(path.read_text())
    data["commands"] = {
        "window": 30,
        "skew": 2,
        "principals": {
            "wms-main": {"classes": ["alarm", "status"]},
            "shift-lead": {"classes": ["alarm", "safety"]},
        },
    }
    return write_config(tmp_path, data)


@pytest.mark.integration
def test_signed_commands_are_verified_single_use_and_audited(
    tmp_path: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    sim = lab.sim(quiet_scenario(), 1.0)
    wms = lab.wms(broker.port)
    path = principals_config(tmp_path, broker.port, sim.port)
    gateway = lab.gateway(path, env=KEYS)
    wait_for_socket(path)
    wait_until(lambda: wms.state.get("status", {}).get("state") == "online", 20, "birth")
    client = CommandClient(broker.port, BASE)
    try:
        # Key rotation: both of wms-main's keys are good.
        for key, rid in ((OLD_KEY, "s-1"), (NEW_KEY, "s-2")):
            reply = client.send("status", signed(key, "wms-main", "status", {}, rid))
            assert reply["id"] == rid and reply["ok"] is True, reply

        override = signed(LEAD_KEY, "shift-lead", "override", OVERRIDE, "o-1")
        accepted = client.send("override", override)
        assert accepted == {"id": "o-1", "ok": True, "events": ["safety.override"]}
        replayed = client.send("override", override)
        assert replayed["ok"] is False
        assert replayed["error"] == "replayed: this nonce was already used within the window"
        same_id = client.send(
            "override", signed(LEAD_KEY, "shift-lead", "override", OVERRIDE, "o-1")
        )
        assert same_id["error"] == "replayed: this id was already used within the window"

        expired = signed(LEAD_KEY, "shift-lead", "override", OVERRIDE, "o-2", time.time() - 90)
        assert client.send("override", expired)["error"].startswith("expired: issued 9")

        header, payload, signature = signed(LEAD_KEY, "shift-lead", "override", OVERRIDE, "o-3")[
            "jws"
        ].split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["args"]["state"] = "on"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        tampered = client.send("override", {"jws": f"{header}.{forged}.{signature}"})
        assert tampered == {
            "id": "o-3",
            "ok": False,
            "error": "signature does not match a key of principal 'shift-lead'",
        }

        lacking = client.send("override", signed(NEW_KEY, "wms-main", "override", OVERRIDE, "o-4"))
        assert lacking["error"] == "principal 'wms-main' may not use safety commands"

        unsigned = client.send("status", {"id": "t-1", "token": "anything", "args": {}})
        assert unsigned["ok"] is False and "must be signed" in unsigned["error"]

        # After a restart the nonce is still known: the capture is refused again.
        assert gateway.terminate() == 0
        wait_until(lambda: wms.state["status"]["state"] == "offline", 10, "offline")
        lab.gateway(path, env=KEYS)
        wait_until(lambda: wms.state["status"]["state"] == "online", 20, "the birth again")
        again = client.send("override", override)
        assert again["error"] == "replayed: this nonce was already used within the window"
    finally:
        client.close()

    wait_until(
        lambda: sum(e["type"] == "command.refused" for e in wms.snapshot()) >= 7,
        20,
        "the refusals on the broker",
    )
    events = wms.snapshot()
    (switched,) = [e for e in events if e["type"] == "safety.override"]
    assert switched["safety"]["by"]["name"] == "shift-lead via mqtt"
    assert switched["safety"]["by"]["actor"] == "operator"
    refusals = [e["command"] for e in events if e["type"] == "command.refused"]
    by = [(r["by"], r.get("principal"), r["error"].split(":")[0]) for r in refusals]
    assert by == [
        ("shift-lead", "shift-lead", "replayed"),
        ("shift-lead", "shift-lead", "replayed"),
        ("shift-lead", "shift-lead", "expired"),
        ("", None, "signature does not match a key of principal 'shift-lead'"),
        ("wms-main", "wms-main", "principal 'wms-main' may not use safety commands"),
        ("", None, "malformed"),
        ("shift-lead", "shift-lead", "replayed"),
    ]
    assert all(r["channel"] == "mqtt" for r in refusals)
    assert wms.invalid == []


def test_the_worked_example_in_the_docs_is_right() -> None:
    text = (ROOT / "docs" / "uplink.md").read_text()
    block = text.split("<!-- signing-example -->", 1)[1].split("```text\n", 1)[1]
    lines = block.split("```", 1)[0].strip().splitlines()
    fields = {line.split()[0]: line.split(None, 1)[1] for line in lines}
    key = fields["key"].encode()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(fields['header'].encode())}.{b64(fields['payload'].encode())}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    assert fields["jws"] == f"{signing_input}.{b64(mac)}"

    claims = json.loads(fields["payload"])
    made = sign(
        key,
        "wms-main",
        claims["aud"],
        claims["cmd"],
        claims["args"],
        request_id=claims["id"],
        issued_at=claims["iat"],
        nonce=claims["nonce"],
    )
    assert made == fields["jws"]
    principals = {"wms-main": Principal("wms-main", frozenset({"alarm"}), (key,))}
    result = verify(made, "ack", BASE, principals, Window(), float(claims["iat"]))
    assert isinstance(result, Verified) and result.principal == "wms-main"
    assert f'`{{"jws": "{fields["jws"][:10]}...{fields["jws"][-5:]}"}}`' in text


def test_cellsafe_sign_prints_a_request_the_gateway_accepts(tmp_path: Path) -> None:
    key_file = tmp_path / "wms-main.key"
    key_file.write_text(NEW_KEY + "\n")
    result = cli(
        "sign",
        "--principal",
        "wms-main",
        "--key-file",
        str(key_file),
        "--to",
        BASE,
        "--id",
        "r-7",
        "ack",
        '{"alarm": "cell-store.h2.high"}',
    )
    assert result.returncode == 0, result.stderr
    message = json.loads(result.stdout)
    principals = {"wms-main": Principal("wms-main", frozenset({"alarm"}), (NEW_KEY.encode(),))}
    verified = verify(message["jws"], "ack", BASE, principals, Window(), time.time())
    assert isinstance(verified, Verified)
    assert verified.id == "r-7"
    assert verified.args == {"alarm": "cell-store.h2.high", "by": "wms-main"}

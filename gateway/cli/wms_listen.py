"""``cellsafe wms-listen``: a WMS in miniature, the reference for confirmed delivery.

It does what a WMS does with ``[mqtt] delivery = "wms"`` (docs/uplink.md, "Confirmed
delivery"): it subscribes to the gateway's events with a persistent session, stores each
one by its ``seq`` (a duplicate is dropped by its primary key), confirms the highest
contiguous ``seq`` it has stored (``commands/confirm {"upto": N}``, at most every
``CONFIRM_EVERY`` seconds), and asks for what it lacks (``commands/resend {"from": N}``):
on every connection, and when a gap has not filled for ``GAP_PATIENCE`` seconds. After a
broker crash that lost queued events, the resend on reconnection gets them back.

    cellsafe wms-listen --config gateway.toml --db wms.sqlite3 --principal wms

Its requests are signed (docs/uplink.md, "Signed commands") by ``--principal``, a principal
of the gateway's file with the class ``delivery``, with that principal's newest key, read
as the gateway reads it: ``CELLSAFE_COMMANDS__KEYS__<NAME>`` or the credential
``commands__keys__<name>``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config.settings import GatewaySettings, key_name
from gateway.uplink.signing import new_nonce, sign

CONFIRM_EVERY = 0.5  # seconds between confirmations while events arrive
GAP_PATIENCE = 1.0  # seconds a gap may stay open before the consumer asks for it again
# A refused request (a wrong key, a class the principal lacks) is not sent again at once:
# the consumer waits, from 1 s doubling up to a minute, and says why, once.
BACKOFF_MIN, BACKOFF_MAX = 1.0, 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    type     TEXT NOT NULL,
    body     TEXT NOT NULL
);
"""


class ReferenceConsumer:
    """``base`` is the gateway's topic base, ``<prefix>/<site>/<gateway>``."""

    def __init__(
        self,
        host: str,
        port: int,
        base: str,
        db: Path,
        signer: tuple[str, bytes] | None,
        client_id: str = "cellsafe-wms-reference",
    ) -> None:
        """``signer`` is (principal, key); without one the requests go unsigned (refused
        unless the gateway accepts the old token form)."""
        self.base = base
        self._signer = signer
        self._lock = threading.Lock()
        self._db = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        self.watermark = self._contiguous(0)
        self._confirmed = 0
        self._gap_since: float | None = None
        self._stop = threading.Event()
        self.subscribed = threading.Event()
        self.received = 0  # event messages, duplicates included
        self.last_error = ""  # the gateway's last refusal of a confirm or resend
        self._quiet_until = 0.0  # monotonic: no requests before this, after a refusal
        self._backoff = BACKOFF_MIN
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self._client.reconnect_delay_set(0.25, 1)  # type: ignore[arg-type]  # float works
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._host, self._port = host, port
        self._ticker = threading.Thread(target=self._tick, name="wms-confirm", daemon=True)

    def start(self) -> ReferenceConsumer:
        self._client.connect_async(self._host, self._port)
        self._client.loop_start()
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._ticker.join(5)
        self._client.disconnect()
        self._client.loop_stop()
        self._db.close()

    def seqs(self) -> list[int]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT seq FROM events ORDER BY seq")]

    # -- paho's thread ---------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"{self.base}/events/#", qos=1)
        client.subscribe(f"{self.base}/replies/confirm", qos=1)
        client.subscribe(f"{self.base}/replies/resend", qos=1)

    def _on_subscribe(self, *_: Any) -> None:
        self._request("resend", {"from": self.watermark + 1})  # whatever we lack
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if "/replies/" in msg.topic:
            self._replied(bytes(msg.payload))
            return
        try:
            event = json.loads(msg.payload)
            seq = int(event["seq"])
        except (ValueError, KeyError, TypeError):
            return  # not an event of the contract: nothing to store
        with self._lock:
            self.received += 1
            self._db.execute(
                "INSERT OR IGNORE INTO events (seq, event_id, type, body) VALUES (?, ?, ?, ?)",
                (seq, str(event.get("event_id")), str(event.get("type")), msg.payload.decode()),
            )
            self.watermark = self._contiguous(self.watermark)
            gap = seq > self.watermark + 1
            if gap and self._gap_since is None:
                self._gap_since = time.monotonic()
            elif not gap:
                self._gap_since = None

    def _replied(self, payload: bytes) -> None:
        try:
            reply = json.loads(payload)
        except ValueError:
            return
        if not isinstance(reply, dict):
            return
        with self._lock:
            if reply.get("ok"):
                self._backoff = BACKOFF_MIN
                self.last_error = ""
                return
            error = str(reply.get("error"))
            if error != self.last_error:
                print(f"the gateway refused a request: {error}", flush=True)
            self.last_error = error
            self._confirmed = 0  # confirm again once the wait is over
            self._quiet_until = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    # -- the ticker's thread -----------------------------------------------------------

    def _tick(self) -> None:
        while not self._stop.wait(CONFIRM_EVERY):
            with self._lock:
                watermark = self.watermark
                stuck = (
                    self._gap_since is not None
                    and time.monotonic() - self._gap_since >= GAP_PATIENCE
                )
                if stuck:
                    self._gap_since = time.monotonic()
            if watermark > self._confirmed and self._request("confirm", {"upto": watermark}):
                self._confirmed = watermark
            if stuck:
                self._request("resend", {"from": watermark + 1})

    def _contiguous(self, start: int) -> int:
        """The highest seq such that every one from 1 up to it is stored."""
        seq = start
        while self._db.execute("SELECT 1 FROM events WHERE seq = ?", (seq + 1,)).fetchone():
            seq += 1
        return seq

    def _request(self, name: str, args: dict[str, Any]) -> bool:
        """Publish one signed request; False when it is not the time (refused lately)."""
        if time.monotonic() < self._quiet_until:
            return False  # refused a moment ago: wait before asking again
        request_id = str(uuid.uuid4())
        body: dict[str, Any] = {"id": request_id, "args": args}
        if self._signer is not None:
            principal, key = self._signer
            body = {
                "jws": sign(
                    key,
                    principal,
                    self.base,
                    name,
                    args,
                    request_id=request_id,
                    issued_at=int(time.time()),
                    nonce=new_nonce(),
                )
            }
        with contextlib.suppress(ValueError, RuntimeError):  # not connected: next time
            self._client.publish(f"{self.base}/commands/{name}", json.dumps(body), qos=1)
        return True


def add_parser(commands: Any) -> None:
    listen = commands.add_parser(
        "wms-listen", help="a reference WMS consumer: store, confirm, ask for gaps"
    )
    listen.add_argument("--config", "-c", type=Path, required=True, help="the gateway's TOML")
    listen.add_argument("--db", type=Path, required=True, help="SQLite file for the events")
    listen.add_argument(
        "--principal", required=True, help="the signing principal, with the class delivery"
    )


def run(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as err:
        for line in err.lines():
            print(line, file=sys.stderr)
        return 1
    problem = _principal_problem(settings, args.principal, args.config)
    if problem:
        print(f"cellsafe wms-listen: {problem}", file=sys.stderr)
        return 1
    keys = settings.commands.principal_keys()[args.principal]
    host, port = settings.mqtt.broker_list()[0]
    base = f"{settings.mqtt.topic_prefix}/{settings.gateway.site}/{settings.gateway.id}"
    signer = (args.principal, keys[-1].encode())  # the newest key of a rotation
    consumer = ReferenceConsumer(host, port, base, args.db, signer).start()
    print(f"listening on {host}:{port} for {base}/events/#, storing in {args.db}")
    shown = consumer.watermark
    try:
        while True:
            time.sleep(1)
            if consumer.watermark != shown:
                shown = consumer.watermark
                print(f"stored every event up to seq {shown}")
    except KeyboardInterrupt:
        pass
    finally:
        consumer.stop()
    return 0


def _principal_problem(settings: GatewaySettings, principal: str, config: Path) -> str | None:
    """Why ``principal`` cannot sign the delivery commands (confirm, resend) with this
    file and environment, in one line naming what to add; ``None`` when it can."""
    section = settings.commands.principals.get(principal)
    if section is None:
        return (
            f"{config.name} has no [commands.principals.{principal}]: add it with"
            ' classes = ["delivery"] (docs/uplink.md)'
        )
    if "delivery" not in section.classes:
        return f'principal {principal!r} may not confirm: add "delivery" to its classes'
    if not settings.commands.principal_keys().get(principal):
        name = key_name(principal)
        return (
            f"no key for principal {principal!r}: set CELLSAFE_COMMANDS__KEYS__{name.upper()}"
            f" or the credential commands__keys__{name}"
        )
    return None

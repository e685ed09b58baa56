"""``cellsafe sign``: a signed MQTT command, as a WMS makes one (docs/uplink.md).

Prints ``{"jws": ...}`` for ``<to>/commands/<command>``; with ``--publish HOST:PORT`` it
also publishes it there (plain MQTT, for trials; a WMS uses its own client and TLS).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from gateway.uplink.signing import new_nonce, sign


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("sign", help="sign an MQTT command with a principal's key")
    parser.add_argument("--principal", required=True, help="the signer, as configured")
    parser.add_argument("--key-file", type=Path, required=True, help="file holding the key")
    parser.add_argument(
        "--to", required=True, help="the gateway's topic base, e.g. cellsafe/plant-a/gw-01"
    )
    parser.add_argument("--id", default=None, help="request id (default: a new UUID)")
    parser.add_argument("--publish", default=None, metavar="HOST:PORT", help="also publish it")
    parser.add_argument("name", metavar="COMMAND", help="ack, shelve, override, reload, ...")
    parser.add_argument(
        "arguments", metavar="ARGS", help='the arguments as a JSON object, e.g. \'{"alarm": "x"}\''
    )


def run(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.arguments)
        key = args.key_file.read_text(encoding="utf-8").strip().split(",")[0].strip()
    except (ValueError, OSError) as err:
        print(f"cellsafe sign: {err}", file=sys.stderr)
        return 2
    if not isinstance(arguments, dict):
        print("cellsafe sign: ARGS must be a JSON object", file=sys.stderr)
        return 2
    token = sign(
        key.encode(),
        args.principal,
        args.to,
        args.name,
        arguments,
        request_id=args.id or str(uuid.uuid4()),
        issued_at=int(time.time()),
        nonce=new_nonce(),
    )
    message = json.dumps({"jws": token})
    print(message)
    if args.publish:
        from paho.mqtt import publish

        host, _, port = args.publish.rpartition(":")
        topic = f"{args.to}/commands/{args.name}"
        publish.single(topic, message, qos=1, hostname=host, port=int(port))
    return 0

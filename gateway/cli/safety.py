"""``cellsafe safety``: the matrix's rows, manual overrides, aborts and row resets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gateway.cli.client import ask
from gateway.config import GatewaySettings


def add_parser(commands: Any) -> None:
    safety = commands.add_parser("safety", help="matrix rows, overrides, aborts, resets")
    safety.add_argument("--config", "-c", type=Path, required=True, help="gateway TOML file")
    actions = safety.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="rows, overrides and blocked relays")

    override = actions.add_parser("override", help="force a relay on or off for a while")
    override.add_argument("relay")
    override.add_argument("state", choices=["on", "off"])
    override.add_argument("--duration", type=float, required=True, help="seconds; it expires")
    override.add_argument("--reason", required=True)
    override.add_argument("--by", required=True, help="your name, for the audit trail")

    for name, target, text in (
        ("end-override", "relay", "end a relay's override now"),
        ("abort", "row", "hold a row's delayed effects (pre-discharge abort)"),
        ("resume", "row", "let an aborted row count down again"),
        ("reset", "row", "release a latched row whose causes are gone"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument(target)
        sub.add_argument("--by", required=True, help="your name, for the audit trail")
        sub.add_argument("--reason", default="")


def run(settings: GatewaySettings, args: argparse.Namespace) -> int:
    if args.action == "list":
        command, payload = "status", {}
    elif args.action == "override":
        command = "override"
        payload = {
            "relay": args.relay,
            "state": args.state,
            "duration": args.duration,
            "reason": args.reason,
            "by": args.by,
        }
    else:
        command = {"end-override": "end_override", "reset": "reset_row"}.get(
            args.action, args.action
        )
        key = "relay" if args.action == "end-override" else "row"
        payload = {key: getattr(args, key), "by": args.by, "reason": args.reason}
    reply = ask(settings, command, payload)
    if isinstance(reply, int):
        return reply
    if command == "status":
        print(json.dumps(reply["status"]["safety"], indent=2))
    else:
        print(", ".join(reply["events"]))
    return 0

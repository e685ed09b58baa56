"""``cellsafe alarm``: list, acknowledge, reset, shelve and take alarms out of service."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.cli.client import ask
from gateway.config import GatewaySettings
from gateway.core.commands import ALARM_COMMANDS
from gateway.core.lines import describe as describe_line


def add_parser(commands: Any) -> None:
    alarm = commands.add_parser("alarm", help="list or act on the running gateway's alarms")
    alarm.add_argument("--config", "-c", type=Path, required=True, help="gateway TOML file")
    actions = alarm.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="alarms that are not normal, relays, backlog")
    for name in ALARM_COMMANDS:
        sub = actions.add_parser(name, help=f"{name} one alarm")
        sub.add_argument("alarm", help="alarm id, e.g. cell-store.temperature.high")
        sub.add_argument("--by", required=True, help="your name, for the audit trail")
        sub.add_argument("--reason", default="")
        if name == "shelve":
            sub.add_argument("--duration", type=float, required=True, help="seconds")


def run(settings: GatewaySettings, args: argparse.Namespace) -> int:
    if args.action == "list":
        command, payload = "status", {}
    else:
        command = args.action
        payload = {"alarm": args.alarm, "by": args.by, "reason": args.reason}
        if args.action == "shelve":
            payload["duration"] = args.duration
    reply = ask(settings, command, payload)
    if isinstance(reply, int):
        return reply
    if command == "status":
        _print_status(reply["status"])
    else:
        print(f"{reply['alarm']}: {reply['state']} ({', '.join(reply['events']) or 'no change'})")
    return 0


def _print_status(status: dict[str, Any]) -> None:
    alarms = status["alarms"]
    print(f"{len(alarms)} {'alarm' if len(alarms) == 1 else 'alarms'} not normal")
    for alarm in alarms:
        print(f"  {alarm['state']:<15} {alarm['priority']:<8} {alarm['id']:<45} {alarm['message']}")
    for name, relay in status["relays"].items():
        print(f"relay {name}: {relay['state']}{' FAULT' if relay['faulted'] else ''}")
    error = f" ({status['uplink_error']})" if status.get("uplink_error") else ""
    print(f"uplink {status['uplink']} to {status['broker']}{error}")
    held = status.get("held", 0)
    memory = f"; {held} events held in memory ({status['storage_error']})" if held else ""
    print(f"log: {status['outbox']} records on disk{memory}")
    for name, sink in status["sinks"].items():
        age = f", oldest {sink['oldest_age']:.0f} s old" if sink["backlog"] else ""
        print(f"sink {name}: {sink['backlog']} waiting{age}")


def reload(settings: GatewaySettings, by: str) -> int:
    reply = ask(settings, "reload", {"by": by})
    if isinstance(reply, int):
        return reply
    print("the gateway restarts with the new configuration")
    return 0


def live_status(settings: GatewaySettings) -> int:
    """``cellsafe status``: the one-line state systemd shows, each device, then the list."""
    from gateway.core.service import status_line

    reply = ask(settings, "status", {})
    if isinstance(reply, int):
        return reply
    status = reply["status"]
    print(status_line(status, [d.name for d in settings.devices]))
    for name, poller in sorted(status["pollers"].items()):
        print(
            f"device {name}: {poller['polls']} polls, {poller.get('bad_polls', 0)} with errors,"
            f" {poller['overruns']} overruns, last {poller['last_duration'] * 1000:.0f} ms"
        )
    for name, source in sorted(status.get("sources", {}).items()):
        why = f" ({source['error']})" if source["error"] else ""
        print(f"device {name}: {source['driver']} {source['state']}{why}")
    for where, line in sorted(status.get("lines", {}).items()):
        print(describe_line(where, line))
    _print_status(status)
    return 0

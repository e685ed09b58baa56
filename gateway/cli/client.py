"""The client side of the control socket, shared by the operator commands."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

from gateway.config import GatewaySettings
from gateway.core.control import SOCKET_NAME


def request(settings: GatewaySettings, command: str, args: dict[str, Any]) -> dict[str, Any]:
    return request_at(settings.gateway.data_dir / SOCKET_NAME, command, args)


def request_at(path: Path, command: str, args: dict[str, Any]) -> dict[str, Any]:
    """One command over the control socket at ``path``; the reply as it came."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(json.dumps({"command": command, "args": args}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    reply: dict[str, Any] = json.loads(data)
    return reply


def ask(settings: GatewaySettings, command: str, args: dict[str, Any]) -> dict[str, Any] | int:
    """The gateway's reply, or the exit code after saying on stderr what went wrong."""
    try:
        reply = request(settings, command, args)
    except OSError as err:
        print(
            f"cannot reach the gateway at {settings.gateway.data_dir / SOCKET_NAME}: {err}",
            file=sys.stderr,
        )
        return 2
    if not reply.get("ok"):
        print(f"refused: {reply.get('error')}", file=sys.stderr)
        return 1
    return reply

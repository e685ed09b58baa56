"""The local control socket: the ``cellsafe alarm`` command talks to the daemon here.

A Unix socket in the data directory, readable and writable by the service's user and
group only: on-site access rights are file permissions, and it works while the network
to the WMS is down. One JSON object per line in, one per line out.

A data directory that cannot take the socket (a read-only or full disk) does not stop the
gateway: detection and relays matter more than the local commands. The socket is then
missing, which the journal says, and the MQTT commands still work.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
from pathlib import Path
from types import TracebackType

from gateway.core.commands import CommandRouter

_logger = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
_MAX_REQUEST = 64 * 1024


class ControlServer:
    def __init__(self, path: Path, router: CommandRouter, group: str | None = None) -> None:
        self.path = path
        self.group = group
        self._router = router
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> ControlServer:
        try:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # left by a process that was killed
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=_MAX_REQUEST
            )
            self.path.chmod(0o660)
            if self.group is not None:
                self._give_to(self.group)
        except OSError as err:
            _logger.error(
                "control socket %s cannot be opened (%s): cellsafe alarm/safety commands will"
                " not reach this gateway until it restarts; MQTT commands still work",
                self.path,
                err,
            )
            if self._server is not None:
                self._server.close()
                self._server = None
        return self

    def _give_to(self, group: str) -> None:
        """The operators' group may then use the socket; the service must be a member."""
        try:
            gid = grp.getgrnam(group).gr_gid
            os.chown(self.path, -1, gid)
        except (KeyError, OSError) as err:
            reason = "no such group" if isinstance(err, KeyError) else str(err)
            _logger.error(
                "control socket %s: cannot give it to group %s (%s): only the service's"
                " own user and group can use it",
                self.path,
                group,
                reason,
            )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                request = json.loads(line)
                name, args = request["command"], request.get("args", {})
                if not isinstance(name, str) or not isinstance(args, dict):
                    raise TypeError("command must be a string and args an object")
                reply = self._router.handle(name, args, "cli")
            except (ValueError, KeyError, TypeError) as err:
                reply = {"ok": False, "error": f"malformed request: {err}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as err:
            _logger.warning("control socket: %s", err)
        finally:
            writer.close()

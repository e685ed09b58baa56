"""A null-modem cable in software: two pseudo-terminal device paths joined back to back.

name: pty_pair
library: the standard library only (``os.openpty``, ``tty``, ``select``); no socat
mode: a relay thread copies bytes both ways until the pair is closed

Serial code opens a device *path* (pyserial needs one), and one ``openpty()`` gives a path on
one side only. So two pairs are opened, both slave sides set raw (no echo, no line
editing, no CR/LF translation), and a thread copies whatever is written to one slave out
of the other, byte for byte, as a cable between two RS-485 adapters would. The slave fds
stay open here for the pair's lifetime, so a side that closes and reopens its port (a
reconnecting client) never makes the relay see a hang-up.

A subclass may shape what crosses by overriding ``carry`` (``simulators/rtu_line.py``
gives the cable a baud rate and units that misbehave).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from types import TracebackType
from typing import Self

_CHUNK = 4096


class PtyPair:
    """``with PtyPair() as pair:`` serve on ``pair.server_path``, connect to ``pair.client_path``.

    Everything opened is closed when the block ends, even if it ends with an exception.
    ``bytes_relayed`` counts what crossed, both directions together (bytes).
    """

    def __init__(self) -> None:
        self.server_path = ""
        self.client_path = ""
        self.bytes_relayed = 0
        self._fds: list[int] = []
        self._masters: tuple[int, int] = (-1, -1)
        self._wake: tuple[int, int] = (-1, -1)
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _open(self) -> None:
        master_a, slave_a = os.openpty()
        self._fds += [master_a, slave_a]
        master_b, slave_b = os.openpty()
        self._fds += [master_b, slave_b]
        self._wake = os.pipe()
        self._fds += list(self._wake)
        for fd in (slave_a, slave_b):
            tty.setraw(fd)
        self.server_path = os.ttyname(slave_a)
        self.client_path = os.ttyname(slave_b)
        self._masters = (master_a, master_b)
        self._thread = threading.Thread(target=self._relay, name="pty-relay", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        master_a, master_b = self._masters
        other = {master_a: master_b, master_b: master_a}
        while True:
            ready, _, _ = select.select([master_a, master_b, self._wake[0]], [], [])
            if self._wake[0] in ready:
                return
            for fd in ready:
                try:
                    data = os.read(fd, _CHUNK)
                except OSError:  # EIO: no slave open; cannot happen while we hold them
                    continue
                self.bytes_relayed += len(data)
                view = memoryview(self.carry(fd == master_a, data))
                while view:
                    view = view[os.write(other[fd], view) :]

    def carry(self, from_server: bool, data: bytes) -> bytes:
        """What of ``data`` (read from the server's side when ``from_server``) reaches the
        other side; called on the relay thread, which it may hold up. Here: all of it."""
        return data

    def close(self) -> None:
        """Stop the relay and close every descriptor; safe to call twice."""
        if self._thread is not None:
            os.write(self._wake[1], b"x")
            self._thread.join(timeout=5)
            self._thread = None
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

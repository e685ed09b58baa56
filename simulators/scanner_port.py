"""A barcode reader on a USB-serial adapter, in software: a pseudo-terminal behind a link.

name: scanner_port
library: the standard library only (``os.openpty``, ``tty``)
mode: the caller writes what the reader would send and reads what it is sent

The gateway opens the link (as it opens ``/dev/serial/by-id/usb-...``); ``send`` writes on
the reader's side. ``pull`` closes the pty and removes the link, as unplugging the adapter
does; ``plug`` opens a new pty behind the same link, as udev does when it comes back.
"""

from __future__ import annotations

import contextlib
import os
import select
import tty
from pathlib import Path
from types import TracebackType


class ScannerPort:
    """``with ScannerPort(link) as reader:`` the gateway opens ``link``; the test sends."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self._slave = -1

    def __enter__(self) -> ScannerPort:
        self.plug()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.pull()

    def plug(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self.master)
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        self.link.symlink_to(os.ttyname(self._slave))

    def pull(self) -> None:
        """Close both sides and remove the link; safe to call twice."""
        for fd in (self.master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self._slave = -1
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def received(self, timeout: float) -> bytes:
        """What the gateway sent to the reader (a reject beep), or b"" after ``timeout`` s."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        return os.read(self.master, 1024) if ready else b""

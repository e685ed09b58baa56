"""One gateway per data directory: an exclusive lock on ``<data_dir>/gateway.lock``.

Two gateways on one data directory would share the event log and the alarm states, drive
the same relays, fight over one MQTT client id and delete each other's control socket. The
second one is refused at start with one line that names the first one's process id. The
lock is an ``flock``: it goes with the process, so a gateway killed with ``kill -9``
leaves nothing to clean up. A data directory that cannot take the lock file (read-only,
full) is not a reason to stop watching the warehouse: the gateway runs without it and
says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

_logger = logging.getLogger(__name__)

LOCK_FILE = "gateway.lock"


class DataDirInUse(Exception):
    """Another gateway holds the data directory."""


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    path = data_dir / LOCK_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as err:
        _logger.warning("cannot lock %s (%s): running without the one-gateway lock", path, err)
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise DataDirInUse(
                f"another gateway (process {holder}) uses {data_dir}; stop it first, or give"
                " this one a data_dir of its own"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield

"""Log records straight into the systemd journal, with fields a journal user filters on.

Under systemd the gateway writes each record to the journal's native socket
(``/run/systemd/journal/socket``, or ``$CELLSAFE_JOURNAL_SOCKET``) as one datagram of
``KEY=value`` fields: ``MESSAGE``, ``PRIORITY`` (syslog levels), ``SYSLOG_IDENTIFIER`` and
``LOGGER``, and where a record concerns one: ``DEVICE``, ``ALARM``, ``RELAY`` and ``SEQ``.
So ``journalctl -u cellsafe-gateway DEVICE=zone-sensors`` or ``ALARM=...`` finds its lines.
The protocol is systemd's "Native Journal Protocol" (a value holding a newline is sent in
its binary form: the key, a newline, its length as 64-bit little-endian, the value).
"""

from __future__ import annotations

import logging
import os
import socket
import struct
from pathlib import Path

DEFAULT_SOCKET = "/run/systemd/journal/socket"
FIELDS = ("device", "alarm", "relay", "seq")  # record attributes, given through ``extra``
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def journal_socket() -> Path | None:
    """The journal's socket when the process runs under systemd, else None."""
    path = Path(os.environ.get("CELLSAFE_JOURNAL_SOCKET", DEFAULT_SOCKET))
    return path if "JOURNAL_STREAM" in os.environ and path.is_socket() else None


def encode(fields: dict[str, str]) -> bytes:
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


class JournalHandler(logging.Handler):
    def __init__(self, path: Path, identifier: str = "cellsafe") -> None:
        super().__init__()
        self._path = str(path)
        self._identifier = identifier
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            fields = {
                "MESSAGE": message,
                "PRIORITY": str(_PRIORITY.get(record.levelno, 6)),
                "SYSLOG_IDENTIFIER": self._identifier,
                "LOGGER": record.name,
            }
            for name in FIELDS:
                value = getattr(record, name, None)
                if value is not None:
                    fields[name.upper()] = str(value)
            self._socket.sendto(encode(fields), self._path)
        except Exception:  # a log line must never take the gateway down
            self.handleError(record)

    def close(self) -> None:
        self._socket.close()
        super().close()

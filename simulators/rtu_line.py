"""An RS-485 line in software: a pty pair with a baud rate, and units that misbehave.

name: rtu_line
library: the standard library only, on top of ``simulators/pty_pair.py``
mode: the pair's relay thread holds every frame for its time on the wire

A pseudo-terminal has no baud rate: bytes cross at once. ``RtuLine`` makes them take the
time they would at ``baudrate`` (11-bit characters, Modbus over Serial Line V1.02,
2.5.1.1): a request reaches the slaves ``frame_time`` after it was written, and a reply
reaches the master t3.5 plus its own frame time after the slave wrote it (a slave sees a
request's end only after t3.5 of silence). So a master on this line can go no faster
than a real one, and the slaves behind it are unchanged pymodbus servers.

Faults, by unit id, may be set while the line runs (``faults[unit] = ...``):

``silent``    the unit's replies never reach the master (a unit that is off or unwired)
``bad_crc``   the unit's replies arrive with their last CRC byte flipped
``framing``   the unit's replies are broken off after half their bytes, as when a
              character with a bad stop bit ends the frame (the master sees an
              incomplete frame, then silence)

The line also records the silence before each request (``silences``, seconds from the
end of the last reply on the wire to the start of the request), to check a master's
inter-frame gap, and the unit id of each request (``requests``).
"""

from __future__ import annotations

import threading
import time
from typing import Literal

from drivers.modbus_timing import frame_gap, frame_time
from simulators.pty_pair import PtyPair

UnitFault = Literal["silent", "bad_crc", "framing"]


class RtuLine(PtyPair):
    """``with RtuLine(9600) as line:`` serve on ``line.server_path``, master on
    ``line.client_path``; ``line.faults[3] = "silent"`` silences unit 3."""

    def __init__(self, baudrate: int = 19200) -> None:
        super().__init__()
        self.baudrate = baudrate
        self.faults: dict[int, UnitFault] = {}
        self.silences: list[float] = []
        self.requests: list[int] = []
        self._lock = threading.Lock()
        self._quiet_since: float | None = None  # when the last reply left the wire

    def carry(self, from_server: bool, data: bytes) -> bytes:
        if not data:
            return data
        if not from_server:
            arrived = time.monotonic()
            with self._lock:
                if self._quiet_since is not None:
                    self.silences.append(arrived - self._quiet_since)
                self.requests.append(data[0])
            time.sleep(frame_time(len(data), self.baudrate))
            return data
        fault = self.faults.get(data[0])
        if fault == "silent":
            return b""
        time.sleep(frame_gap(self.baudrate) + frame_time(len(data), self.baudrate))
        if fault == "bad_crc":
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        elif fault == "framing":
            data = data[: max(1, len(data) // 2)]
        with self._lock:
            self._quiet_since = time.monotonic()
        return data

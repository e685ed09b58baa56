"""A Modbus TCP server that misbehaves on demand, the way devices in the field do.

Unlike ``simulators/faults.py``, which sits in front of a correct server and spoils its
replies, this is the device itself: four in-memory tables (coils, discrete inputs,
holding and input registers, 65536 entries each) served over plain MBAP framing (Modbus
Messaging on TCP/IP Implementation Guide v1.0b), so that every fault is one ``if`` here
rather than a hook into a library's server. Switches live in ``Faults`` and may be flipped
while clients are connected:

``close_after_reply``  close the TCP connection after every reply
``exception_every``    every Nth request answered with exception 4 (server device failure)
``garbage_every``      every Nth reply garbled: valid MBAP header, nonsense PDU
``silent_every``       every Nth request swallowed; ``silent`` swallows all of them
``wrong_unit_every``   every Nth reply carries another unit id than the request's
``max_registers``      register reads longer than this get exception 3 (illegal data
                       value), as from a device that refuses reads over, say, 61 registers
``max_bits``           the same for coil and discrete input reads
``byte_swap``          each register's two bytes swapped on the wire, both ways
                       (a device with little-endian registers)

``N`` counts requests served since start, from 1; 0 switches a fault off. Exception codes
and the 125-register / 2000-bit limits are those of Modbus Application Protocol v1.1b3
(sections 6.1-6.4 and 7). Requests to a unit id other than ``unit_id`` get exception 11
(gateway target device failed to respond), as from a Modbus TCP gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from drivers.modbus_codec import DataType, RegisterOrder, encode, encode_raw, swap_bytes

BitTable = Literal["coil", "discrete_input"]
RegisterTable = Literal["holding", "input"]

_MBAP = 7
_SIZE = 65536
_READ_COILS, _READ_DISCRETE, _READ_HOLDING, _READ_INPUT = 1, 2, 3, 4
_WRITE_COIL, _WRITE_REGISTER, _WRITE_COILS, _WRITE_REGISTERS = 5, 6, 15, 16
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, DEVICE_FAILURE = 1, 2, 3, 4
GATEWAY_TARGET_FAILED = 11

# "Not available" patterns of SunSpec's information models, which many devices copy.
NOT_AVAILABLE: dict[DataType, int] = {
    "int16": 0x8000,
    "uint16": 0xFFFF,
    "int32": 0x80000000,
    "uint32": 0xFFFFFFFF,
}


@dataclass(kw_only=True)
class Faults:
    """What the server does wrong; every field may be changed while it runs."""

    close_after_reply: bool = False
    exception_every: int = 0
    garbage_every: int = 0
    silent_every: int = 0
    silent: bool = False
    wrong_unit_every: int = 0
    max_registers: int = 125
    max_bits: int = 2000
    byte_swap: bool = False


def _every(n: int, count: int) -> bool:
    return n > 0 and count % n == 0


class MisbehavingServer:
    """``async with MisbehavingServer() as server:`` listens on a free loopback port
    (``server.port``) until the block ends; ``server.requests`` counts requests received."""

    def __init__(self, unit_id: int = 1, faults: Faults | None = None, host: str = "127.0.0.1"):
        self.unit_id = unit_id
        self.faults = faults or Faults()
        self.host = host
        self.port = 0
        self.requests = 0
        self.connections = 0
        self.coils = [False] * _SIZE
        self.discrete_inputs = [False] * _SIZE
        self.holding = [0] * _SIZE
        self.input = [0] * _SIZE
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def __aenter__(self) -> MisbehavingServer:
        # Port 0: the kernel picks a free port at bind time, so no race with other tests.
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        # Closing the sockets ends each handler's read; cancelling them instead makes
        # asyncio's stream callback log the cancellation as an error.
        for writer in self._handlers.values():
            writer.close()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=2)
        for task in self._handlers:
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    # Values ---------------------------------------------------------------------------

    def registers(self, table: RegisterTable) -> list[int]:
        return self.holding if table == "holding" else self.input

    def set_registers(
        self, address: int, words: list[int], table: RegisterTable = "holding"
    ) -> None:
        """Put raw 16-bit words at ``address`` onward, exactly as they should go out."""
        if any(not 0 <= w <= 0xFFFF for w in words):
            raise ValueError("register words must be 0..65535")
        self.registers(table)[address : address + len(words)] = words

    def set_value(
        self,
        address: int,
        value: float,
        data_type: DataType,
        order: RegisterOrder = "ABCD",
        table: RegisterTable = "holding",
    ) -> None:
        """An int16, uint16, int32, uint32 or float32 value laid out in ``order``."""
        self.set_registers(address, encode(value, data_type, order), table)

    def set_raw(
        self,
        address: int,
        raw: int,
        data_type: DataType,
        order: RegisterOrder = "ABCD",
        table: RegisterTable = "holding",
    ) -> None:
        """A bit pattern, signed or unsigned, e.g. ``set_raw(4, 0x80000000, "int32")``."""
        self.set_registers(address, encode_raw(raw, data_type, order), table)

    def set_not_available(
        self,
        address: int,
        data_type: DataType,
        order: RegisterOrder = "ABCD",
        table: RegisterTable = "holding",
    ) -> None:
        """The SunSpec "not available" pattern of ``data_type`` (``NOT_AVAILABLE``)."""
        self.set_raw(address, NOT_AVAILABLE[data_type], data_type, order, table)

    def set_bit(self, address: int, value: bool, table: BitTable = "coil") -> None:
        (self.coils if table == "coil" else self.discrete_inputs)[address] = value

    # Protocol -------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        self.connections += 1
        try:
            while True:
                header = await reader.readexactly(_MBAP)
                length = int.from_bytes(header[4:6], "big")
                if length < 2:
                    break
                pdu = await reader.readexactly(length - 1)
                self.requests += 1
                reply = self._reply(header, pdu, self.requests)
                if reply is None:
                    continue
                writer.write(reply)
                await writer.drain()
                if self.faults.close_after_reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._handlers.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def _reply(self, header: bytes, pdu: bytes, count: int) -> bytes | None:
        faults = self.faults
        if faults.silent or _every(faults.silent_every, count):
            return None
        unit = header[6]
        if unit != self.unit_id:
            body = bytes([pdu[0] | 0x80, GATEWAY_TARGET_FAILED])
        elif _every(faults.exception_every, count):
            body = bytes([pdu[0] | 0x80, DEVICE_FAILURE])
        elif _every(faults.garbage_every, count):
            # A function code no request used and a byte count that overruns the frame.
            body = bytes([0x5A, 0xFF, 0xA5, 0x5A])
        else:
            body = self._answer(pdu)
        if _every(faults.wrong_unit_every, count):
            unit = (unit + 1) % 256
        return header[:4] + (len(body) + 1).to_bytes(2, "big") + bytes([unit]) + body

    def _answer(self, pdu: bytes) -> bytes:
        function = pdu[0]
        try:
            if function in (_READ_COILS, _READ_DISCRETE, _READ_HOLDING, _READ_INPUT):
                return self._read(function, pdu)
            if function in (_WRITE_COIL, _WRITE_REGISTER, _WRITE_COILS, _WRITE_REGISTERS):
                return self._write(function, pdu)
        except _Refused as refusal:
            return bytes([function | 0x80, refusal.code])
        except IndexError:
            return bytes([function | 0x80, ILLEGAL_VALUE])
        return bytes([function | 0x80, ILLEGAL_FUNCTION])

    def _read(self, function: int, pdu: bytes) -> bytes:
        start = int.from_bytes(pdu[1:3], "big")
        quantity = int.from_bytes(pdu[3:5], "big")
        bits = function in (_READ_COILS, _READ_DISCRETE)
        limit = min(2000, self.faults.max_bits) if bits else min(125, self.faults.max_registers)
        if not 1 <= quantity <= limit:
            raise _Refused(ILLEGAL_VALUE)
        if start + quantity > _SIZE:
            raise _Refused(ILLEGAL_ADDRESS)
        if bits:
            table = self.coils if function == _READ_COILS else self.discrete_inputs
            packed = _pack_bits(table[start : start + quantity])
            return bytes([function, len(packed)]) + packed
        words = (self.holding if function == _READ_HOLDING else self.input)[
            start : start + quantity
        ]
        if self.faults.byte_swap:
            words = [swap_bytes(w) for w in words]
        data = b"".join(w.to_bytes(2, "big") for w in words)
        return bytes([function, len(data)]) + data

    def _write(self, function: int, pdu: bytes) -> bytes:
        start = int.from_bytes(pdu[1:3], "big")
        if function == _WRITE_COIL:
            value = int.from_bytes(pdu[3:5], "big")
            if value not in (0x0000, 0xFF00):
                raise _Refused(ILLEGAL_VALUE)
            self.coils[start] = value == 0xFF00
            return pdu[:5]
        swap = self.faults.byte_swap
        if function == _WRITE_REGISTER:
            word = int.from_bytes(pdu[3:5], "big")
            self.holding[start] = swap_bytes(word) if swap else word
            return pdu[:5]
        quantity = int.from_bytes(pdu[3:5], "big")
        data = pdu[6:]
        if start + quantity > _SIZE:
            raise _Refused(ILLEGAL_ADDRESS)
        if function == _WRITE_COILS:
            if not 1 <= quantity <= 0x7B0 or len(data) < (quantity + 7) // 8:
                raise _Refused(ILLEGAL_VALUE)
            for i in range(quantity):
                self.coils[start + i] = bool(data[i // 8] >> (i % 8) & 1)
        else:
            if not 1 <= quantity <= 0x7B or len(data) < 2 * quantity:
                raise _Refused(ILLEGAL_VALUE)
            for i in range(quantity):
                word = int.from_bytes(data[2 * i : 2 * i + 2], "big")
                self.holding[start + i] = swap_bytes(word) if swap else word
        return pdu[:5]


class _Refused(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _pack_bits(bits: list[bool]) -> bytes:
    """Coils packed LSB first, eight to a byte (Modbus Application Protocol 6.1)."""
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)

"""RTU timing on a serial line: character time, the inter-frame gap, frame lengths. Pure.

Source: Modbus over Serial Line Specification and Implementation Guide V1.02, 2.5.1.1:
an RTU character is 11 bits (1 start, 8 data, 1 parity or a second stop, 1 stop); frames
are separated by a silence of at least 3.5 character times (t3.5), fixed at 1.750 ms
above 19,200 bit/s. Frame lengths are those of Modbus Application Protocol v1.1b3,
sections 6.1-6.12, plus one byte of unit id before the PDU and two bytes of CRC after it.

Every duration here is in seconds.
"""

from __future__ import annotations

import math

BITS_PER_CHARACTER = 11
FIXED_GAP_ABOVE = 19200  # bit/s; above this the gap is fixed (spec V1.02, 2.5.1.1)
FIXED_GAP = 0.00175  # s
RTU_OVERHEAD = 3  # bytes: unit id before the PDU, CRC after it

_BIT_READS = (1, 2)
_REGISTER_READS = (3, 4)
_SINGLE_WRITES = (5, 6)


def character_time(baudrate: int) -> float:
    """Seconds one 11-bit RTU character takes on the wire at ``baudrate`` bit/s."""
    if baudrate <= 0:
        raise ValueError(f"baudrate must be positive, got {baudrate}")
    return BITS_PER_CHARACTER / baudrate


def frame_gap(baudrate: int) -> float:
    """t3.5: the silence that ends a frame, in seconds (1.75 ms above 19,200 bit/s)."""
    if baudrate > FIXED_GAP_ABOVE:
        return FIXED_GAP
    return 3.5 * character_time(baudrate)


def frame_time(length: int, baudrate: int) -> float:
    """Seconds ``length`` bytes of one frame take on the wire."""
    return length * character_time(baudrate)


def request_length(function: int, count: int = 1) -> int:
    """Bytes of an RTU request frame: function 1-4 reads ``count`` items, 5/6 writes one,
    15 writes ``count`` coils, 16 writes ``count`` registers."""
    if function in (*_BIT_READS, *_REGISTER_READS, *_SINGLE_WRITES):
        return RTU_OVERHEAD + 5  # function, address (2), quantity or value (2)
    if function == 15:
        return RTU_OVERHEAD + 6 + math.ceil(count / 8)
    if function == 16:
        return RTU_OVERHEAD + 6 + 2 * count
    raise ValueError(f"no frame length known for function code {function}")


def reply_length(function: int, count: int = 1) -> int:
    """Bytes of the normal RTU reply to ``request_length(function, count)``'s request."""
    if function in _BIT_READS:
        return RTU_OVERHEAD + 2 + math.ceil(count / 8)
    if function in _REGISTER_READS:
        return RTU_OVERHEAD + 2 + 2 * count
    if function in (*_SINGLE_WRITES, 15, 16):
        return RTU_OVERHEAD + 5
    raise ValueError(f"no frame length known for function code {function}")


def exchange_time(function: int, count: int, baudrate: int) -> float:
    """Shortest time one request and its reply hold the line: both frames, and a gap
    after each (the slave sees the request's end only after t3.5 of silence, and the
    master waits t3.5 after the reply before its next request)."""
    frames = request_length(function, count) + reply_length(function, count)
    return frame_time(frames, baudrate) + 2 * frame_gap(baudrate)


def requests_per_second_limit(function: int, count: int, baudrate: int) -> float:
    """The most such exchanges one line carries per second: ``1 / exchange_time``."""
    return 1.0 / exchange_time(function, count, baudrate)

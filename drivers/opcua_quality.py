"""OPC UA status codes and stamps as sample quality. Pure functions, no I/O.

A StatusCode's two top bits give its severity (OPC 10000-4, 7.39): ``00`` Good, ``01``
Uncertain, ``10`` and ``11`` Bad. A Good value becomes a good sample; an Uncertain one
keeps its value with the code's name as the reason; a Bad one carries no value, only the
name (``BadSensorFailure``, ``BadCommunicationError``, ...), so nothing downstream can
take a failed reading for a reading.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

from asyncua import ua

from vocab.samples import Quality, Sample, Value

_SEVERITY_MASK = 0xC0000000
_UNCERTAIN = 0x40000000


def code_name(code: int) -> str:
    """``0x80320000`` -> ``"BadSensorFailure"``; an unknown code as its hex form."""
    found = _NAMES.get(code & 0xFFFF0000)
    return found if found is not None else f"0x{code:08X}"


_NAMES: dict[int, str] = {
    value: key
    for key, value in vars(ua.StatusCodes).items()
    if isinstance(value, int) and not key.startswith("_")
}


def severity(code: int) -> Quality:
    """The code's severity as a sample quality."""
    top = code & _SEVERITY_MASK
    if top == 0:
        return Quality.GOOD
    if top == _UNCERTAIN:
        return Quality.UNCERTAIN
    return Quality.BAD


def stamp(value: datetime.datetime | None) -> float | None:
    """An OPC UA DateTime as Unix seconds; ``None`` for a missing or minimum stamp."""
    if value is None or value.year < 1971:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()


def convert(raw: Any, binary: bool) -> Value | None:
    """A variant's value as a sample value, or ``None`` when it is not a scalar we carry.

    Booleans stay booleans; integers and finite floats become floats (an int on a binary
    point becomes ``value != 0``); text stays text. Arrays, structures, NaN are no reading.
    """
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int):
        return raw != 0 if binary else float(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None
        return raw != 0.0 if binary else raw
    if isinstance(raw, str):
        return raw
    if isinstance(raw, ua.LocalizedText):
        return raw.Text or ""
    return None


def sample_of(
    point: str, data: ua.DataValue | None, binary: bool, now: float, mono: float
) -> Sample:
    """One DataValue (a Read result or a data-change notification) as a sample of ``point``.

    ``ts`` and ``mono`` are the gateway's stamps of arrival; the server's SourceTimestamp
    goes to ``source_ts``. A Good code with a value we cannot carry is bad, with a reason.
    """
    if data is None:
        return Sample.bad(point, now, mono, "no value")
    code = data.StatusCode.value if data.StatusCode is not None else 0
    quality = severity(code)
    source = stamp(data.SourceTimestamp)
    if quality is Quality.BAD:
        sample = Sample.bad(point, now, mono, code_name(code))
        sample.source_ts = source
        return sample
    raw = data.Value.Value if data.Value is not None else None
    value = convert(raw, binary)
    if value is None:
        return Sample(
            point, None, Quality.BAD, now, mono, f"no scalar value: {raw!r}"[:120], source
        )
    if quality is Quality.UNCERTAIN:
        return Sample(point, value, Quality.UNCERTAIN, now, mono, code_name(code), source)
    return Sample(point, value, Quality.GOOD, now, mono, None, source)

"""A scan is one read of a barcode or an RFID tag: a record of its own, not a sample.

A sample is the state of a point (a temperature now); a scan is something that happened
(this pallet was read at that door), and two identical scans a second apart are two
events, not one value repeated. Scanner drivers publish scans; the stock-event logic
turns sessions of them into EPCIS events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Symbology = Literal["barcode", "rfid"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    """``scanner`` is the reader's device name; ``data`` the decoded text as read (a GS1
    element string, a plain code, or EPC hex for RFID); ``ts`` Unix time in seconds."""

    scanner: str
    data: str
    symbology: Symbology
    ts: float


class ScanHandler(Protocol):
    def __call__(self, scans: Sequence[Scan], /) -> None: ...

"""The configuration of a barcode or RFID reader: how it is reached and how it frames a read.

One ``[[devices]]`` table per reader with ``driver = "scanner"``. How the reader is reached
is the ``transport`` table, a union on ``type``: ``serial`` (a USB-serial or RS-232
reader, best named by its stable ``/dev/serial/by-id/...`` link) or ``tcp`` (a fixed
reader or a serial-to-Ethernet converter that sends its reads over a TCP stream).
Sample block: ``config/drivers/scanner.toml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.base import DeviceConfig, PointInfo

# One read ends at the terminator its reader is set to send (the readers' own names).
Framing = Literal["cr", "lf", "crlf", "stx_etx"]
Symbology = Literal["barcode", "rfid"]
CONNECTED = "connected"  # the reader's one point: true while its port or stream is open


class _Transport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def describe(self) -> str:
        raise NotImplementedError


class SerialScannerTransport(_Transport):
    """A reader on a local serial port (USB-serial adapter, RS-232)."""

    type: Literal["serial"]
    port: str = Field(min_length=1, description="device path, e.g. /dev/serial/by-id/usb-...")
    baudrate: int = Field(9600, ge=300, le=4_000_000, description="bits per second")
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1

    def describe(self) -> str:
        return self.port


class TcpScannerTransport(_Transport):
    """A reader that sends its reads over a TCP stream (the reader is the server)."""

    type: Literal["tcp"]
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535, description="the reader's TCP port")

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


ScannerTransport = Annotated[
    SerialScannerTransport | TcpScannerTransport, Field(discriminator="type")
]


class ScannerConfig(DeviceConfig):
    """A barcode or RFID reader. Its reads become scans (``vocab.scans.Scan``) for the
    stock logic; its one point ``<name>.connected`` is false while the reader is away."""

    driver: Literal["scanner"]
    transport: ScannerTransport
    symbology: Symbology = Field(
        "barcode", description="what the reader reads: barcodes, or RFID tags sent as EPC hex"
    )
    framing: Framing = Field("cr", description="what ends one read: cr, lf, crlf or stx_etx")
    prefix: str = Field("", max_length=16, description="stripped from the start of a read")
    suffix: str = Field("", max_length=16, description="stripped from the end of a read")
    max_length: int = Field(
        4096, ge=16, le=65536, description="bytes; a longer read is dropped as garbled"
    )
    reject_signal: str = Field(
        "",
        max_length=64,
        description="bytes sent to the reader after a refused scan (beep or red LED); "
        "empty: the reader cannot be told",
    )
    accept_signal: str = Field("", max_length=64, description="bytes sent after a good scan")
    location: str = Field(
        "",
        max_length=128,
        description="the reader's place for EPCIS readPoint, e.g. an SGLN URN; "
        "default urn:cellsafe:scanner:<site>:<name>",
    )
    alarm_after: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="seconds the reader may be away before device.<name>.comm is raised",
    )
    garbled_after: int = Field(
        20,
        ge=2,
        le=10_000,
        description="unreadable reads within garbled_window seconds that mark the reader"
        " garbled: device.<name>.garbled is raised and its unusable reads are counted in a"
        " summary stock.rejected instead of one event and one reject signal each",
    )
    garbled_window: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="seconds over which garbled_after counts; as long without an unusable"
        " read ends the garbled state",
    )
    reconnect_min: float = Field(0.2, gt=0, le=60, description="first reconnect delay, seconds")
    reconnect_max: float = Field(10.0, gt=0, le=3600, description="longest reconnect delay")

    @model_validator(mode="after")
    def _check(self) -> ScannerConfig:
        if self.reconnect_min > self.reconnect_max:
            raise ValueError("reconnect_min must not exceed reconnect_max")
        return self

    def point_infos(self) -> Sequence[PointInfo]:
        return [PointInfo(key=CONNECTED, binary=True, writable=False)]

    @property
    def terminator(self) -> bytes:
        return {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n", "stx_etx": b"\x03"}[self.framing]

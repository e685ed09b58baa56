"""What a read says: a GS1 code (item, lot, pallet), an RFID tag, or a plain code.

``decode(text, symbology)`` returns a ``Code``. Barcodes are parsed with biip (GS1-128 and
GS1 DataMatrix element strings with FNC1 as GS, the bracketed human-readable form, bare
GTIN-8/12/13/14 and SSCC, and GS1 Digital Link URIs), never by hand; RFID reads are EPC
hex (the tag's EPC bank, SGTIN-96, SSCC-96, ...) decoded with epcpy. The EPCs are given as
EPC pure-identity URNs (GS1 Tag Data Standard 2.x, section 6): ``urn:epc:id:sgtin:`` for a
GTIN with serial (AI 21), ``urn:epc:class:lgtin:`` for a GTIN with lot (AI 10),
``urn:epc:id:sscc:`` for a logistic unit (AI 00). A URN needs the GS1 company prefix's
length; biip knows it for prefixes in the GS1 prefix table, else ``prefix_length``.

Anything that is neither GS1 nor an EPC is a plain code (a location label, a command
label): its text passes through unchanged. A read with bytes the reader could not decode
(U+FFFD) is unreadable. Nothing here raises on any input.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

import biip
from biip.checksums import gs1_standard_check_digit
from biip.gs1_messages import GS1Message
from epcpy.epc_schemes.lgtin import LGTIN
from epcpy.epc_schemes.sgtin import SGTIN
from epcpy.epc_schemes.sscc import SSCC
from epcpy.utils.parsers import hex_to_tag_encodable

Kind = Literal["item", "pallet", "plain", "unreadable"]
DEFAULT_PREFIX_LENGTH = 7
_EPC_HEX = re.compile(r"^(?:[0-9A-Fa-f]{4})+$")
_HRI = re.compile(r"\((\d{2,4})\)")
_PLAIN = re.compile(r"^[\x20-\x7e]{1,128}$")
# AIM symbology identifier (ISO/IEC 15424): "]", a symbology letter, a modifier character.
_AIM = re.compile(r"^\][A-Za-z][0-9A-Za-z](?=.)")
# AIs for a count of trade items: (30) variable count, (37) count in a logistic unit.
_COUNT_AIS = ("30", "37")
# Dates: (11) production, (13) packaging, (15) best before, (17) expiry.
_DATE_AIS = {"11": "production", "13": "packaging", "15": "best_before", "17": "expiry"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Code:
    """One decoded read.

    ``kind``: ``item`` (a GTIN, with lot and/or serial), ``pallet`` (an SSCC),
    ``plain`` (``text`` only) or ``unreadable`` (``error`` says why).
    ``epc``: SGTIN or SSCC URN of this very object, or None; ``epc_class``: LGTIN URN
    (or ``urn:epc:idpat:sgtin:...*`` for a bare GTIN) for quantities of a class.
    ``quantity``: count from AI 30 or 37, else None. ``dates``: ISO dates by name.
    """

    kind: Kind
    text: str
    gtin: str | None = None
    lot: str | None = None
    serial: str | None = None
    sscc: str | None = None
    epc: str | None = None
    epc_class: str | None = None
    quantity: int | None = None
    dates: tuple[tuple[str, str], ...] = ()
    error: str = ""


def label(text: str) -> str:
    """A read as a label says it: without the AIM symbology identifier a reader set to send
    them puts before every read (``]C0CMD:PICK`` -> ``CMD:PICK``, ``]Q1C-01`` -> ``C-01``),
    for matching operation and location labels."""
    return _AIM.sub("", text, count=1)


def decode(
    text: str,
    symbology: Literal["barcode", "rfid"] = "barcode",
    *,
    prefix_length: int = DEFAULT_PREFIX_LENGTH,
) -> Code:
    """The ``Code`` of one read's text; never raises."""
    if "\ufffd" in text or not text.strip():
        return Code(kind="unreadable", text=text, error="the reader sent undecodable bytes")
    try:
        if symbology == "rfid":
            return _rfid(text.strip())
        return _barcode(text.strip(), prefix_length)
    except Exception as err:  # a library's surprise is a bad read, never a crash
        return Code(kind="unreadable", text=text, error=f"{type(err).__name__}: {err}")


def _rfid(text: str) -> Code:
    if not _EPC_HEX.match(text):
        return Code(kind="unreadable", text=text, error="not EPC hex")
    try:
        tag = hex_to_tag_encodable(text)
    except Exception as err:
        return Code(kind="unreadable", text=text, error=f"EPC hex not decodable: {err}")
    uri: str = tag.epc_uri
    if isinstance(tag, SSCC):
        return Code(kind="pallet", text=text, epc=uri)
    if isinstance(tag, SGTIN):
        gtin, serial = _sgtin_parts(uri)
        return Code(kind="item", text=text, epc=uri, gtin=gtin, serial=serial)
    return Code(kind="item", text=text, epc=uri)


def _sgtin_parts(uri: str) -> tuple[str, str]:
    """``urn:epc:id:sgtin:CP.IIR.S`` -> (GTIN-14, serial)."""
    company, item, serial = uri.rsplit(":", 1)[1].split(".", 2)
    body = item[0] + company + item[1:]
    return body + str(gs1_standard_check_digit(body)), serial


def _barcode(text: str, prefix_length: int) -> Code:
    if text.startswith("("):
        # The bracketed (human-readable) form, as keyed in or printed under a barcode. biip
        # 4.0's parse_hri cuts a value at "-" ("(10)L2025-11" gives lot "L2025"), so the
        # brackets become FNC1 separators here and biip parses the element string itself.
        parts = _HRI.split(text)[1:]
        string = "\x1d".join(ai + value for ai, value in zip(parts[::2], parts[1::2], strict=True))
        try:
            message = GS1Message.parse(string)
        except Exception as err:
            return Code(kind="unreadable", text=text, error=f"bracketed GS1 not valid: {err}")
        return _gs1(text, {e.ai.ai: e for e in message.element_strings}, prefix_length)
    result = biip.parse(text)
    if text.isdigit() and len(text) in (8, 12, 13, 14) and result.gtin is not None:
        return _gs1(text, {"01": _bare("01" + result.gtin.value.zfill(14))}, prefix_length)
    if text.isdigit() and len(text) == 18 and result.sscc is not None:
        return _gs1(text, {"00": _bare("00" + result.sscc.value)}, prefix_length)
    if result.gs1_message is not None:
        return _gs1(text, {e.ai.ai: e for e in result.gs1_message.element_strings}, prefix_length)
    if result.gs1_web_uri is not None:
        elements = result.gs1_web_uri.element_strings
        return _gs1(text, {e.ai.ai: e for e in elements}, prefix_length)
    if result.symbology_identifier is not None and not _PLAIN.match(text[3:] or "x"):
        return Code(kind="unreadable", text=text, error="not a GS1 code and not plain text")
    if not _PLAIN.match(text):
        return Code(kind="unreadable", text=text, error="not a GS1 code and not plain text")
    return Code(kind="plain", text=text)


def _bare(element_string: str) -> biip.gs1_element_strings.GS1ElementString:
    return GS1Message.parse(element_string).element_strings[0]


def _gs1(
    text: str, by_ai: dict[str, biip.gs1_element_strings.GS1ElementString], prefix_length: int
) -> Code:
    dates = tuple(
        (name, e.date.isoformat())
        for ai, name in _DATE_AIS.items()
        if (e := by_ai.get(ai)) is not None and isinstance(e.date, dt.date)
    )
    quantity = next((int(by_ai[ai].value) for ai in _COUNT_AIS if ai in by_ai), None)
    if "00" in by_ai:
        sscc = by_ai["00"].value
        length = _prefix_length(by_ai["00"].sscc, prefix_length)
        unit = SSCC.from_gs1_element_string(f"(00){sscc}", length).epc_uri
        content = by_ai["02"].value if "02" in by_ai else None  # GTIN of what it holds
        return Code(
            kind="pallet",
            text=text,
            sscc=sscc,
            epc=unit,
            gtin=content,
            lot=by_ai["10"].value if "10" in by_ai else None,
            quantity=quantity,
            dates=dates,
        )
    if "01" not in by_ai and "02" not in by_ai:
        return Code(kind="unreadable", text=text, error="a GS1 code without GTIN (01) or SSCC (00)")
    element = by_ai.get("01") or by_ai["02"]
    gtin = element.value
    length = _prefix_length(element.gtin, prefix_length)
    lot = by_ai["10"].value if "10" in by_ai else None
    serial = by_ai["21"].value if "21" in by_ai else None
    epc: str | None = None
    epc_class: str | None = None
    if serial is not None:
        epc = SGTIN.from_gs1_element_string(f"(01){gtin}(21){serial}", length).epc_uri
    if lot is not None:
        epc_class = LGTIN.from_gs1_element_string(f"(01){gtin}(10){lot}", length).epc_uri
    else:
        company, item = gtin[1 : length + 1], gtin[0] + gtin[length + 1 : -1]
        epc_class = f"urn:epc:idpat:sgtin:{company}.{item}.*"
    return Code(
        kind="item",
        text=text,
        gtin=gtin,
        lot=lot,
        serial=serial,
        epc=epc,
        epc_class=epc_class,
        quantity=quantity,
        dates=dates,
    )


def _prefix_length(key: object, default: int) -> int:
    company = getattr(key, "company_prefix", None)
    value = getattr(company, "value", None)
    return len(value) if isinstance(value, str) and 6 <= len(value) <= 12 else default

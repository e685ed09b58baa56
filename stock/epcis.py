"""EPCIS 2.0 ObjectEvents in the JSON-LD binding, with their event-hash ids.

``object_event`` builds one event as GS1's EPCIS 2.0 JSON Schema describes it
(``type``, ``eventTime`` with ``eventTimeZoneOffset``, ``action``, ``bizStep`` and
``disposition`` from the CBV 2.0 vocabularies as bare words, ``readPoint`` and
``bizLocation`` as ``{"id": URI}``, ``epcList`` of EPC URNs, ``quantityList`` of
``{"epcClass", "quantity"}``, ``sourceList``/``destinationList`` of CBV type
``location``). ``eventID`` is the EPCIS event hash (CBV 2.0 section 8.9, "ni:///sha-256;
...?ver=CBV2.0"), computed by GS1's reference implementation (PyPI
``epcis-event-hash-generator``): the same event seen twice (a repeated message, a
replayed outbox) has the same id, so the WMS drops the duplicate.
"""

from __future__ import annotations

import copy
import logging
import warnings
from datetime import UTC, datetime
from typing import Any, Literal

from epcis_event_hash_generator import hash_generator, json_to_py

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
Action = Literal["ADD", "OBSERVE", "DELETE"]

# Our operations and their CBV 2.0 business steps and dispositions.
BIZ_STEPS = {
    "received": ("receiving", "in_progress"),
    "stored": ("storing", "sellable_not_accessible"),
    "picked": ("picking", "in_progress"),
    "moved": ("storing", "sellable_not_accessible"),
    "counted": ("cycle_counting", None),
}
MISPLACED_DISPOSITION = "non_conformant"


def event_time(ts: float) -> str:
    """Unix seconds -> ``2026-11-30T04:25:25.123Z``; the offset is given apart, +00:00."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def object_event(
    *,
    ts: float,
    action: Action,
    biz_step: str,
    read_point: str,
    disposition: str | None = None,
    biz_location: str | None = None,
    epcs: list[str] | None = None,
    quantities: list[tuple[str, int]] | None = None,
    source: str | None = None,
    destination: str | None = None,
) -> dict[str, Any]:
    """One ObjectEvent with its ``eventID``; ``quantities`` are ``(epcClass, count)``."""
    event: dict[str, Any] = {
        "@context": [CONTEXT],
        "type": "ObjectEvent",
        "eventTime": event_time(ts),
        "eventTimeZoneOffset": "+00:00",
        "epcList": sorted(set(epcs or [])),
        "action": action,
        "bizStep": biz_step,
        "readPoint": {"id": read_point},
    }
    if quantities:
        event["quantityList"] = [{"epcClass": c, "quantity": n} for c, n in quantities]
    if disposition:
        event["disposition"] = disposition
    if biz_location:
        event["bizLocation"] = {"id": biz_location}
    if source:
        event["sourceList"] = [{"type": "location", "source": source}]
    if destination:
        event["destinationList"] = [{"type": "location", "destination": destination}]
    event["eventID"] = event_hash(event)
    return event


def event_hash(event: dict[str, Any]) -> str:
    """The EPCIS event hash of one event (its ``eventID`` and ``recordTime`` ignored)."""
    hashes: list[str] = hash_generator.calculate_hashes_from_pre_hashes([prehash(event)])
    return hashes[0]


class _Quiet(logging.Filter):
    """The reference implementation logs every event at INFO on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "epcis_event_hash_generator" not in record.pathname


_QUIET = _Quiet()


def prehash(event: dict[str, Any]) -> str:
    """The canonical pre-hash string of an event (CBV 2.0 section 8.9.2): its fields in
    the standard's order, EPCs and locations as GS1 Digital Link URIs, CBV words as URIs.
    ``ValueError`` if the reference implementation cannot read the event."""
    body = copy.deepcopy(event)
    body.pop("@context", None)
    body.pop("eventID", None)
    document = {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": body["eventTime"],
        "epcisBody": {"eventList": [body]},
    }
    root = logging.getLogger()
    root.addFilter(_QUIET)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # its importlib use
            events = json_to_py.event_list_from_epcis_document_json(document)
            strings: list[str] = hash_generator.derive_prehashes_from_events(events)
    finally:
        root.removeFilter(_QUIET)
    if len(strings) != 1:
        raise ValueError("the reference implementation could not read this event")
    return strings[0]

"""Stock logic: GS1 parsing of real codes, a scan session per stock event type validated
against GS1's EPCIS 2.0 JSON Schema and our contract, the put-away check, FIFO, bad scans,
the event hash and the master store."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource

from stock import session
from stock.codes import decode
from stock.epcis import event_hash, object_event, prehash
from stock.master import MasterData, MasterStore, load_toml
from stock.session import MISPLACED_ALARM, Stock
from tests import contract
from vocab.scans import Scan

ROOT = Path(__file__).resolve().parent.parent
EPCIS = Path(__file__).resolve().parent / "fixtures" / "epcis-2.0" / "JSON-Schema"
MASTER = ROOT / "config" / "stock-master.toml"
TOPIC = "cellsafe/plant-a/gw-01/events/stock"

CELLS = "(01)04012345000016(10)L202603(21)C0001"  # lithium cells, class 9
CELLS_OLD = "(01)04012345000016(10)L202511(21)C0002"
ELECTROLYTE = "]C10104012345000023\x1d10E-77\x1d3704"  # GS1-128 with FNC1 as GS, class 3
PALLET = "(00)340123450000000017(02)04012345000016(37)48(10)L202603"


@cache
def epcis_validator() -> Draft7Validator:
    resources = []
    for path in [*EPCIS.glob("*.json"), *(EPCIS / "schemas").glob("*.json")]:
        schema = json.loads(path.read_text())
        rel = path.relative_to(EPCIS).as_posix()
        uri = f"https://gs1.github.io/EPCIS/JSON-Schema/{rel}"
        resources.append((uri, Resource.from_contents(schema)))
        if "$id" in schema:
            resources.append((schema["$id"], Resource.from_contents(schema)))
    registry: Registry[Any] = Registry().with_resources(resources)
    root = json.loads((EPCIS / "EPCIS-Event-JSON-Schema.json").read_text())
    event = {"$ref": root["$id"] + "#/definitions/EPCIS-Document-Event"}
    return Draft7Validator(event, registry=registry)


def epcis_problems(event: dict[str, Any]) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in epcis_validator().iter_errors(event)]


def master() -> MasterData:
    return load_toml(MASTER)


class Reader:
    def __init__(self, stock: Stock, name: str = "dock-1") -> None:
        self.stock, self.name, self.ts = stock, name, 1_764_460_800.0

    def __call__(self, *reads: str, data: MasterData | None = None) -> list[Any]:
        outcomes = []
        for text in reads:
            self.ts += 1
            scan = Scan(scanner=self.name, data=text, symbology="barcode", ts=self.ts)
            outcomes.append(self.stock.scan(scan, data or master()))
        return outcomes


def envelope(event: Any, seq: int = 1) -> dict[str, Any]:
    return {
        "event_id": "0b9c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
        "seq": seq,
        "type": event.type,
        "ts": "2026-11-30T04:00:00.000Z",
        "site": "plant-a",
        "gateway": "gw-01",
        **event.body,
    }


def only_event(outcomes: list[Any]) -> Any:
    events = [e for o in outcomes for e in o.events]
    assert len(events) == 1, events
    assert contract.problems(TOPIC, envelope(events[0])) == []
    if "epcis" in events[0].body:
        assert epcis_problems(events[0].body["epcis"]) == []
    return events[0]


# -- GS1 and EPC codes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # GS1 General Specifications 2.1 example: GTIN, expiry, lot, serial (GS1-128, FNC1).
        (
            "]C101095011010209171719050810ABCD1234\x1d2110",
            {
                "gtin": "09501101020917",
                "lot": "ABCD1234",
                "serial": "10",
                "epc": "urn:epc:id:sgtin:950110102.0091.10",
                "dates": (("expiry", "2019-05-08"),),
            },
        ),
        # GS1 DataMatrix from a pharma pack (]d2): GTIN, expiry, lot.
        (
            "]d2010950110153000317260531108765",
            {
                "gtin": "09501101530003",
                "lot": "8765",
                "epc_class": "urn:epc:class:lgtin:950110153.0000.8765",
            },
        ),
        # The SSCC of the GS1 Logistic Label guideline, bracketed and bare.
        ("(00)106141411234567897", {"kind": "pallet", "epc": "urn:epc:id:sscc:0614141.1123456789"}),
        ("00106141411234567897", {"kind": "pallet", "sscc": "106141411234567897"}),
        # GS1 Digital Link URI on a QR code.
        (
            "https://id.gs1.org/01/09506000134352/10/ABC/21/123",
            {"gtin": "09506000134352", "lot": "ABC", "serial": "123"},
        ),
        # A bracketed code keyed in from the label, with a "-" in the lot (CSET 82).
        (
            "(01)04012345000016(10)L2025-11(21)C0002",
            {"lot": "L2025-11", "epc": "urn:epc:id:sgtin:4012345.000001.C0002"},
        ),
        # A bare EAN-13 and a count of items (AI 37).
        ("9506000134352", {"gtin": "09506000134352", "serial": None}),
        ("0109506000134352\x1d3712", {"quantity": 12, "epc": None}),
        # Plain codes pass through; broken GS1 and undecodable bytes are unreadable.
        ("A-01-02", {"kind": "plain", "text": "A-01-02"}),
        ("(01)123", {"kind": "unreadable"}),
        ("\ufffd\ufffd12", {"kind": "unreadable"}),
    ],
)
def test_real_world_codes(text: str, expected: dict[str, Any]) -> None:
    code = decode(text)
    for key, value in expected.items():
        assert getattr(code, key) == value, (key, code)
    if "kind" not in expected:
        assert code.kind == "item"


def test_rfid_epc_hex_from_the_tag_data_standard() -> None:
    # TDS 2.1, section 14.5.1: SGTIN-96 of 0614141.812345.6789.
    code = decode("3074257BF7194E4000001A85", "rfid")
    assert (code.kind, code.epc) == ("item", "urn:epc:id:sgtin:0614141.812345.6789")
    assert code.gtin == "80614141123458" and code.serial == "6789"
    assert decode("30XX", "rfid").kind == "unreadable"


# -- one session per stock event type --------------------------------------------------


def test_receive_then_put_away_with_epcis_events() -> None:
    read = Reader(Stock("plant-a", {}, {}))
    received = only_event(read("CMD:RECEIVE", PALLET))
    assert received.type == "stock.received"
    epcis = received.body["epcis"]
    assert epcis["bizStep"] == "receiving" and epcis["action"] == "ADD"
    assert epcis["epcList"] == ["urn:epc:id:sscc:4012345.3000000001"]
    assert epcis["readPoint"] == {"id": "urn:cellsafe:scanner:plant-a:dock-1"}
    assert epcis_problems({**epcis, "action": "MOVE"})  # the schema does refuse
    assert epcis_problems({**epcis, "readPoint": "dock-1"})

    stored = only_event(read("CMD:PUTAWAY", "C-01", CELLS))
    epcis = stored.body["epcis"]
    assert stored.type == "stock.stored" and "misplacement" not in stored.body
    assert epcis["bizStep"] == "storing"
    assert epcis["bizLocation"] == {"id": "urn:epc:id:sgln:0401234.00001.C-01"}
    assert epcis["epcList"] == ["urn:epc:id:sgtin:4012345.000001.C0001"]


def test_put_away_quantity_without_serials() -> None:
    read = Reader(Stock("plant-a", {}, {}))
    stored = only_event(read("CMD:PUTAWAY", "E-01", ELECTROLYTE))
    assert stored.body["epcis"]["quantityList"] == [
        {"epcClass": "urn:epc:class:lgtin:4012345.000002.E-77", "quantity": 4}
    ]


def test_electrolyte_in_the_cell_store_is_misplaced_and_alarmed() -> None:
    stock = Stock("plant-a", {}, {})
    read = Reader(stock)
    *_, item = read("CMD:PUTAWAY", "C-02", ELECTROLYTE)
    event = only_event([item])
    assert item.signal == "reject"
    assert event.body["epcis"]["disposition"] == "non_conformant"
    reasons = event.body["misplacement"]["reasons"]
    assert event.body["misplacement"]["alarm"] == MISPLACED_ALARM
    assert any("does not allow hazard class 3" in r for r in reasons)
    assert stock.misplaced  # the alarm's condition holds ...
    moved = only_event(read("CMD:MOVE", "C-02", ELECTROLYTE, "E-01"))
    assert moved.type == "stock.moved" and "misplacement" not in moved.body
    assert moved.body["epcis"]["sourceList"][0]["type"] == "location"
    assert stock.misplaced == []  # ... until the drums left the cell store


def test_incompatible_classes_next_door() -> None:
    stock = Stock("plant-a", {}, {})
    read = Reader(stock)
    only_event(read("CMD:PUTAWAY", "M-01", CELLS))  # class 9 into the mixed zone: fine
    (event,) = [e for o in read("M-02", ELECTROLYTE) for e in o.events]
    reasons = event.body["misplacement"]["reasons"]
    assert reasons == ["hazard class 3 must not be stored with class 9 (next door at M-01)"]


def test_pick_notes_an_older_lot_in_the_same_zone() -> None:
    stock = Stock("plant-a", {}, {})
    read = Reader(stock)
    read("CMD:PUTAWAY", "C-01", CELLS_OLD, "C-03", CELLS)
    picked = only_event(read("CMD:PICK", "C-03", CELLS))
    assert picked.body["epcis"]["bizStep"] == "picking"
    assert picked.body["fifo"]["older_lot"] == "L202511"
    assert picked.body["fifo"]["location"] == "C-01"
    again = only_event(read("C-01", CELLS_OLD))
    assert "fifo" not in again.body


def test_count_a_location() -> None:
    read = Reader(Stock("plant-a", {}, {}))
    counted = only_event(read("CMD:COUNT", "C-01", CELLS, CELLS_OLD, ELECTROLYTE, "CMD:DONE"))
    epcis = counted.body["epcis"]
    assert epcis["bizStep"] == "cycle_counting"
    assert len(epcis["epcList"]) == 2
    assert epcis["quantityList"][0]["quantity"] == 4


@pytest.mark.parametrize(
    ("reads", "reason"),
    [
        (["CMD:PUTAWAY", "\ufffd\ufffd"], "unreadable"),
        (["CMD:PUTAWAY", "Z-99"], "unknown_location"),
        (["CMD:PUTAWAY", "C-01", "(01)09506000134352(21)1"], "unknown_material"),
        (["CMD:PUTAWAY", CELLS], "out_of_order"),
        ([CELLS], "out_of_order"),
        (["CMD:RECEIVE", "C-01"], "out_of_order"),
    ],
)
def test_bad_scans_give_a_clear_event_and_a_reject(reads: list[str], reason: str) -> None:
    outcomes = Reader(Stock("plant-a", {}, {}))(*reads)
    event = only_event(outcomes)
    assert event.type == "stock.rejected" and event.body["reason"] == reason
    assert outcomes[-1].signal == "reject"


# -- the event hash ----------------------------------------------------------------------


def test_event_hash_follows_the_canonical_form() -> None:
    kw: dict[str, Any] = {
        "ts": 1_764_460_800.5,
        "action": "OBSERVE",
        "biz_step": "storing",
        "read_point": "urn:cellsafe:scanner:plant-a:dock-1",
        "biz_location": "urn:epc:id:sgln:0401234.00001.C-01",
    }
    one = object_event(
        epcs=["urn:epc:id:sgtin:0614141.812345.6789", "urn:epc:id:sgtin:0614141.812345.6790"], **kw
    )
    two = object_event(
        epcs=["urn:epc:id:sgtin:0614141.812345.6790", "urn:epc:id:sgtin:0614141.812345.6789"], **kw
    )
    assert one["eventID"] == two["eventID"]  # list order does not matter
    assert one["eventID"] == event_hash({**one, "recordTime": "2030-01-01T00:00:00Z"})
    moved = object_event(epcs=one["epcList"], **{**kw, "biz_location": "urn:x:other"})
    assert moved["eventID"] != one["eventID"]
    # CBV 2.0 section 8.9: the pre-hash string in its canonical order, EPCs as GS1 Digital
    # Link URIs, CBV words as their full URIs.
    assert prehash(one) == (
        "eventType=ObjectEventeventTime=2025-11-30T00:00:00.500ZeventTimeZoneOffset=+00:00"
        "epcListepc=https://id.gs1.org/01/80614141123458/21/6789"
        "epc=https://id.gs1.org/01/80614141123458/21/6790action=OBSERVE"
        "bizStep=https://ref.gs1.org/cbv/BizStep-storing"
        "readPointid=urn:cellsafe:scanner:plant-a:dock-1"
        "bizLocationid=https://id.gs1.org/414/0401234000017/254/C-01"
    )
    import hashlib

    digest = hashlib.sha256(prehash(one).encode()).hexdigest()
    assert one["eventID"] == f"ni:///sha-256;{digest}?ver=CBV2.0"


# -- the master ----------------------------------------------------------------------------


def test_master_store_keeps_only_newer_versions(tmp_path: Path) -> None:
    store = MasterStore(tmp_path, master())
    data = json.loads(store.current.model_dump_json())
    assert store.update(data) == (False, f"version {data['version']} is already in force")
    applied, _ = store.update({**data, "version": data["version"] + 1})
    assert applied
    older, why = store.update({**data, "version": 0})
    assert not older and "older" in why
    bad, why = store.update({**data, "version": 99, "locations": {"X": {"zone": "nowhere"}}})
    assert not bad and "no zone 'nowhere'" in why
    assert MasterStore(tmp_path, master()).current.version == data["version"] + 1  # on disk


def test_the_stock_package_does_not_import_the_gateway() -> None:
    import ast

    found = []
    for path in (ROOT / "stock").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "gateway"]
    assert found == []


def test_a_label_ends_a_count_and_abandons_an_unfinished_move() -> None:
    read = Reader(Stock("plant-a", {}, {}))
    counted = only_event(read("CMD:COUNT", "C-01", CELLS, "CMD:PICK"))
    assert counted.type == "stock.counted"
    (abandoned,) = [e for o in read("CMD:MOVE", "C-01", CELLS, "CMD:RECEIVE") for e in o.events]
    assert abandoned.type == "stock.rejected"
    assert abandoned.body["message"] == "move of 1 scans abandoned: no target location"
    assert only_event(read(PALLET)).type == "stock.received"  # now in receive mode


def test_a_bad_master_file_is_a_configuration_error(tmp_path: Path) -> None:
    from stock.config import StockSection

    bad = tmp_path / "master.toml"
    bad.write_text('version = 1\n[locations.X]\nzone = "nowhere"\n')
    with pytest.raises(ValueError, match=r"master.toml: .*locations.X.zone: no zone 'nowhere'"):
        StockSection(master_file=bad)
    assert StockSection(master_file=MASTER).master_file == MASTER


def test_a_location_that_leaves_the_master_between_two_scans() -> None:
    read = Reader(Stock("plant-a", {}, {}))
    read("CMD:PUTAWAY", "C-03")
    data = master()
    newer = data.model_copy(update={"version": 2, "locations": {"C-01": data.locations["C-01"]}})
    event = only_event(read(CELLS, data=newer))
    assert (event.body["reason"], event.body["message"]) == (
        "unknown_location",
        "C-03 left the master data",
    )


def test_a_count_keeps_a_unit_read_again_once_and_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session, "MAX_CODES", 3)
    stock = Stock("plant-a", {}, {})
    read = Reader(stock)
    read("CMD:COUNT", "C-01", *[CELLS] * 50)  # an RFID gate reads each tag again and again
    assert len(stock.sessions["dock-1"].codes) == 1
    others = [f"(01)04012345000016(21)X{i}" for i in range(3)]
    refused = read(*others)[-1]
    assert [e.body["reason"] for e in refused.events] == ["too_many"]
    assert len(stock.sessions["dock-1"].codes) == 3


def test_labels_read_with_aim_symbology_identifiers() -> None:
    """A reader set to send AIM identifiers (config/drivers/scanner.toml says keep them)
    puts one before operation and location labels too: ]C0 for Code 128, ]Q1 for QR."""
    read = Reader(Stock("plant-a", {}, {}))
    cells = "]C10104012345000016\x1d10L202603\x1d21C0001"
    stored = only_event(read("]C0CMD:PUTAWAY", "]Q1C-01", cells))
    assert stored.type == "stock.stored"
    assert stored.body["location"] == "C-01"

"""Scan sessions: a reader's scans turned into stock events, checked against the master.

One ``Session`` per reader, driven by what it scans. An operation begins with its command
label (a plain code): ``CMD:RECEIVE``, ``CMD:PUTAWAY``, ``CMD:PICK``, ``CMD:MOVE``,
``CMD:COUNT``; ``CMD:DONE`` ends a count or a move's list. Then:

- receive: each item or pallet scanned -> ``stock.received`` (bizStep ``receiving``);
- put-away: a location, then items or pallets -> ``stock.stored`` (``storing``) each,
  after the put-away check; another location changes the target;
- pick: a location, then items -> ``stock.picked`` (``picking``), with a FIFO hint when an
  older lot of the same material lies in the same zone;
- move: the location it leaves, the items, then the location it goes to ->
  ``stock.moved`` (``storing``, with source and destination), after the put-away check;
- count: a location, the items found there, ``CMD:DONE`` (or the next location) ->
  ``stock.counted`` (``cycle_counting``) with the EPCs and quantities seen.

A scan that cannot be used gives ``stock.rejected`` with a ``reason``: ``unreadable``,
``unknown_location``, ``unknown_material``, ``out_of_order`` (an item before its
location, a location in receive mode, ...) or ``too_many`` (a move or count past
``MAX_CODES`` scans), and the reader's reject signal. A put-away or
move that the check refuses is still recorded (the goods may be there), with
disposition ``non_conformant``, the reasons under ``misplacement``, the reject signal, and
``stock.putaway.misplaced`` active until every misplaced unit has left its place.

``Stock`` owns the sessions and the ``Ledger`` (what lies where), which the caller stores
atomically with the events (``Stock.state``). Nothing here does I/O or raises on a scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from stock.codes import Code, decode, label
from stock.epcis import BIZ_STEPS, MISPLACED_DISPOSITION, object_event
from stock.master import MasterData
from vocab.events import Event
from vocab.ids import stock_alarm_id
from vocab.scans import Scan

MISPLACED_ALARM = stock_alarm_id("putaway", "misplaced")
Mode = Literal["receive", "putaway", "pick", "move", "count"]
COMMANDS: dict[str, Mode | None] = {
    "CMD:RECEIVE": "receive",
    "CMD:PUTAWAY": "putaway",
    "CMD:PICK": "pick",
    "CMD:MOVE": "move",
    "CMD:COUNT": "count",
    "CMD:DONE": None,
}
Signal = Literal["accept", "reject"]
LEDGER_STATE = "stock.ledger"
MAX_CODES = 10_000  # scans one move or count may collect before its end


@dataclass(slots=True)
class Holding:
    """One unit (an EPC) or a quantity of a class at a location, since ``ts``."""

    key: str  # the EPC, or the class URN when only a quantity is known
    gtin: str
    lot: str | None
    hazard_class: str
    ts: float
    misplaced: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "gtin": self.gtin,
            "lot": self.lot,
            "hazard_class": self.hazard_class,
            "ts": self.ts,
            "misplaced": self.misplaced,
        }


class Ledger:
    """What lies where, as far as this gateway saw it: location -> holdings."""

    def __init__(self, saved: Mapping[str, Any] | None = None) -> None:
        self.places: dict[str, list[Holding]] = {
            loc: [Holding(**h) for h in held] for loc, held in (saved or {}).items()
        }

    def export(self) -> dict[str, Any]:
        return {loc: [h.to_json() for h in held] for loc, held in self.places.items() if held}

    def classes_at(self, locations: Sequence[str]) -> dict[str, list[str]]:
        return {loc: [h.hazard_class for h in self.places.get(loc, [])] for loc in locations}

    def take(self, key: str) -> tuple[str, Holding] | None:
        for loc, held in self.places.items():
            for h in held:
                if h.key == key:
                    held.remove(h)
                    return loc, h
        return None

    def put(self, location: str, holding: Holding) -> None:
        self.places.setdefault(location, []).append(holding)

    @property
    def misplaced(self) -> list[tuple[str, Holding]]:
        return [(loc, h) for loc, held in self.places.items() for h in held if h.misplaced]


@dataclass(slots=True)
class Outcome:
    events: list[Event] = field(default_factory=list)
    signal: Signal | None = None


@dataclass(slots=True)
class Session:
    scanner: str
    read_point: str
    mode: Mode | None = None
    location: str | None = None
    codes: list[Code] = field(default_factory=list)
    epcs: set[str] = field(default_factory=set)  # the EPCs in codes


class Stock:
    """The stock logic of one gateway: ``scan(scan, master)`` -> ``Outcome``.

    ``site`` makes the default URNs (``urn:cellsafe:location:<site>:<id>``); ``read_points``
    gives each reader's EPCIS readPoint, by reader name.
    """

    def __init__(
        self,
        site: str,
        read_points: Mapping[str, str],
        symbologies: Mapping[str, Literal["barcode", "rfid"]],
        saved: Mapping[str, Any] | None = None,
        prefix_length: int = 7,
    ) -> None:
        self.site = site
        self._read_points = dict(read_points)
        self._symbologies = dict(symbologies)
        self._prefix_length = prefix_length
        self.ledger = Ledger(saved)
        self.sessions: dict[str, Session] = {}

    @property
    def state(self) -> dict[str, Any]:
        return {LEDGER_STATE: self.ledger.export()}

    @property
    def misplaced(self) -> list[str]:
        """One line per misplaced unit, for the alarm's message; [] when none is."""
        return [f"{h.key} at {loc}: {'; '.join(h.misplaced)}" for loc, h in self.ledger.misplaced]

    def session(self, scanner: str) -> Session:
        if scanner not in self.sessions:
            point = self._read_points.get(scanner) or f"urn:cellsafe:scanner:{self.site}:{scanner}"
            self.sessions[scanner] = Session(scanner, point)
        return self.sessions[scanner]

    def scan(self, scan: Scan, master: MasterData) -> Outcome:
        s = self.session(scan.scanner)
        text = scan.data
        plain = label(text)  # a label read with an AIM symbology identifier (]C0...)
        if plain.upper() in COMMANDS:
            return self._command(s, COMMANDS[plain.upper()], scan, master)
        if plain in master.locations:
            return self._location(s, plain, scan, master)
        code = decode(
            text,
            self._symbologies.get(scan.scanner, scan.symbology),
            prefix_length=self._prefix_length,
        )
        if code.kind == "unreadable":
            return self._reject(s, scan, "unreadable", code.error)
        if code.kind == "plain":
            return self._reject(s, scan, "unknown_location", f"{text!r} is no known location")
        if s.mode is None:
            return self._reject(s, scan, "out_of_order", "scan an operation label first (CMD:...)")
        material = master.material(code.gtin)
        if material is None:
            what = f"GTIN {code.gtin}" if code.gtin else f"{code.kind} without a GTIN (02)"
            return self._reject(s, scan, "unknown_material", f"{what} is not in the master")
        if s.mode == "receive":
            return self._emit(s, "received", [code], scan, master)
        if s.location is None:
            return self._reject(s, scan, "out_of_order", f"scan the location first ({s.mode})")
        if s.location not in master.locations:  # a new master came between the two scans
            gone, s.location = s.location, None
            return self._reject(s, scan, "unknown_location", f"{gone} left the master data")
        if s.mode == "putaway":
            return self._emit(s, "stored", [code], scan, master, location=s.location)
        if s.mode == "pick":
            return self._emit(s, "picked", [code], scan, master, location=s.location)
        # Move or count: collected until the end. A unit read again (an RFID gate reads
        # each tag many times a second) is kept once; a list is at most MAX_CODES long.
        if code.epc is None or code.epc not in s.epcs:
            if len(s.codes) >= MAX_CODES:
                return self._reject(s, scan, "too_many", f"at most {MAX_CODES} scans per {s.mode}")
            s.codes.append(code)
            if code.epc is not None:
                s.epcs.add(code.epc)
        return Outcome(signal="accept")

    # -- steps ---------------------------------------------------------------------

    def _command(self, s: Session, mode: Mode | None, scan: Scan, master: MasterData) -> Outcome:
        """An operation label: a count in progress is ended (and reported) by any label; a
        move still waiting for its target is refused by ``CMD:DONE`` and abandoned, with a
        ``stock.rejected`` event, by another operation's label."""
        outcome = Outcome(signal="accept")
        if s.mode == "count" and s.location is not None:
            outcome = self._emit(s, "counted", s.codes, scan, master, location=s.location)
        elif s.mode == "move" and s.codes:
            if mode is None:
                return self._reject(s, scan, "out_of_order", "scan the target location to move")
            n = len(s.codes)
            outcome = self._reject(
                s, scan, "out_of_order", f"move of {n} scans abandoned: no target location"
            )
        s.mode, s.location, s.codes, s.epcs = mode, None, [], set()
        return outcome

    def _location(self, s: Session, location: str, scan: Scan, master: MasterData) -> Outcome:
        if s.mode in (None, "receive"):
            return self._reject(s, scan, "out_of_order", f"a location in mode {s.mode or 'none'}")
        if s.mode == "move" and s.location is not None and s.codes:
            outcome = self._emit(
                s, "moved", s.codes, scan, master, location=location, source=s.location
            )
            s.location, s.codes, s.epcs = None, [], set()
            return outcome
        outcome = Outcome(signal="accept")
        if s.mode == "count" and s.location is not None:
            outcome = self._emit(s, "counted", s.codes, scan, master, location=s.location)
        s.location, s.codes, s.epcs = location, [], set()
        return outcome

    def _reject(self, s: Session, scan: Scan, reason: str, message: str) -> Outcome:
        body = {
            "scanner": s.scanner,
            "reason": reason,
            "message": message,
            "data": scan.data[:128],
            "mode": s.mode,
            "location": s.location,
        }
        return Outcome([Event("stock.rejected", body, scan.ts)], "reject")

    def _emit(
        self,
        s: Session,
        what: str,
        codes: Sequence[Code],
        scan: Scan,
        master: MasterData,
        *,
        location: str | None = None,
        source: str | None = None,
    ) -> Outcome:
        biz_step, disposition = BIZ_STEPS[what]
        epcs = [c.epc for c in codes if c.epc]
        counts: dict[str, int] = {}
        for c in codes:
            if c.epc is None and c.epc_class is not None:
                counts[c.epc_class] = counts.get(c.epc_class, 0) + (c.quantity or 1)
        body: dict[str, Any] = {"scanner": s.scanner, "location": location}
        reasons: list[str] = []
        if what in ("stored", "moved") and location is not None:
            for c in codes:
                material = master.material(c.gtin)
                if material is None:
                    continue
                self._release(c)  # wherever it was, it is not there any more
                near = self.ledger.classes_at(master.near(location))
                reasons += master.misplacement(material, location, near)
        if reasons:
            disposition = MISPLACED_DISPOSITION
            body["misplacement"] = {"alarm": MISPLACED_ALARM, "reasons": reasons}
        if what == "picked":
            fifo = self._fifo(codes, location, master)
            if fifo:
                body["fifo"] = fifo
        event = object_event(
            ts=scan.ts,
            action="ADD" if what == "received" else "OBSERVE",
            biz_step=biz_step,
            disposition=disposition,
            read_point=s.read_point,
            biz_location=self._urn(master, location) if location else None,
            epcs=epcs,
            quantities=sorted(counts.items()),
            source=self._urn(master, source) if source else None,
            destination=self._urn(master, location) if source and location else None,
        )
        body["epcis"] = event
        self._book(what, codes, location, master, scan.ts, reasons)
        return Outcome([Event(f"stock.{what}", body, scan.ts)], "reject" if reasons else "accept")

    def _urn(self, master: MasterData, location: str) -> str:
        place = master.locations.get(location)
        return (place.gln if place and place.gln else "") or (
            f"urn:cellsafe:location:{self.site}:{location}"
        )

    def _release(self, code: Code) -> None:
        key = code.epc or code.epc_class
        if key is not None:
            self.ledger.take(key)

    def _book(
        self,
        what: str,
        codes: Sequence[Code],
        location: str | None,
        master: MasterData,
        ts: float,
        reasons: list[str],
    ) -> None:
        for c in codes:
            key = c.epc or c.epc_class
            material = master.material(c.gtin)
            if key is None or material is None:
                continue
            if what in ("stored", "moved", "picked"):
                self.ledger.take(key)
            if what in ("stored", "moved") and location is not None:
                gtin = (c.gtin or "").zfill(14)
                holding = Holding(key, gtin, c.lot, material.hazard_class, ts, reasons)
                self.ledger.put(location, holding)

    def _fifo(
        self, codes: Sequence[Code], location: str | None, master: MasterData
    ) -> dict[str, Any] | None:
        if location is None or location not in master.locations:
            return None
        zone = master.locations[location].zone
        for c in codes:
            mine = next(
                (h for h in self.ledger.places.get(location, []) if h.key in (c.epc, c.epc_class)),
                None,
            )
            since = mine.ts if mine is not None else None
            older = [
                (h.ts, loc, h)
                for loc, held in self.ledger.places.items()
                if loc in master.locations and master.locations[loc].zone == zone
                for h in held
                if h.gtin == (c.gtin or "").zfill(14)
                and h.lot != c.lot
                and (since is None or h.ts < since)
            ]
            if older:
                _, loc, h = min(older, key=lambda o: o[0])
                return {
                    "older_lot": h.lot,
                    "location": loc,
                    "message": f"lot {h.lot} of the same material at {loc} is older: pick it first",
                }
        return None

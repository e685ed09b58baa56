"""The local copy of the WMS's material master and storage locations, and the put-away check.

``MasterData`` is what the WMS owns and the gateway keeps so that it can check a put-away
on its own, the WMS reachable or not:

- ``materials``: by GTIN-14, each with its hazard class (UN/ADR class or division as text,
  e.g. ``"3"`` flammable liquids, ``"8"`` corrosives, ``"9"`` lithium batteries UN 3480)
  and optional storage temperature range in degC;
- ``zones``: the hazard classes a zone may hold and its temperature range in degC;
- ``locations``: the zone of each storage location (bin, rack slot, floor place) and the
  locations next to it;
- ``incompatible``: pairs of hazard classes that must not share a location or stand in
  neighbouring locations (segregation as TRGS 510 / the ADR table 7.5.2.1 ask).

It comes from a TOML file at start-up and from the WMS as a whole new version
(``version`` only goes up). Validation errors name the key path (pydantic).

A location is found by scanning its label, so its id must be something a label carries
and the scan session reads as a location (``location_id_problem``): 1 to 64 printable
ASCII characters without spaces (the reader's bytes are read as ASCII, and spaces are lost
at a label's ends), not beginning with ``]`` (the AIM symbology identifier a reader may
send before each read is removed before labels are matched), and not in the operation
labels' namespace ``CMD:`` in any case (``CMD:PICK`` would always start a pick). A master
with such a location is refused whole, naming it.
``misplacement`` is the put-away check; it returns the reasons, empty when all is well.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

_GTIN = re.compile(r"^\d{14}$")
_KEY = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"
_LOCATION_ID = re.compile(r"^[\x21-\x7e]{1,64}$")  # printable ASCII, no space
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")  # a TOML bare key
OPERATION_PREFIX = "CMD:"  # every operation label begins so (stock.session.COMMANDS)


def key_path(*parts: str) -> str:
    """A key path as TOML writes it: ``locations."CMD:PICK".zone``."""
    return ".".join(p if _BARE_KEY.match(p) else json.dumps(p) for p in parts)


def location_id_problem(location: str) -> str | None:
    """Why ``location`` cannot be scanned as a location label, or None when it can."""
    if location.upper().startswith(OPERATION_PREFIX):
        return (
            f"{OPERATION_PREFIX}... is the operation labels' text: a scan of it would be"
            " taken as an operation, never as this location"
        )
    if not _LOCATION_ID.match(location):
        return (
            "a location id is 1 to 64 printable ASCII characters without spaces,"
            " what a label carries and a reader sends"
        )
    if location.startswith("]"):
        return "a location id must not begin with ']', the mark of an AIM symbology identifier"
    return None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Material(_Model):
    name: str = Field(min_length=1, max_length=128)
    hazard_class: str = Field(
        min_length=1, max_length=8, description='UN/ADR class or division, e.g. "3", "9"'
    )
    temp_min: float | None = Field(None, description="lowest storage temperature, degC")
    temp_max: float | None = Field(None, description="highest storage temperature, degC")


class Zone(_Model):
    allowed_classes: list[str] = Field(description="hazard classes this zone may hold")
    temp_min: float | None = Field(None, description="lowest temperature the zone keeps, degC")
    temp_max: float | None = Field(None, description="highest temperature the zone keeps, degC")


class Location(_Model):
    zone: str = Field(pattern=_KEY)
    neighbours: list[str] = Field(default_factory=list, description="adjacent location ids")
    gln: str = Field("", max_length=128, description="its SGLN URN for EPCIS bizLocation, if any")


class MasterData(_Model):
    """One version of the master. ``version`` is the WMS's number, increasing."""

    version: int = Field(ge=0)
    materials: dict[str, Material] = Field(default_factory=dict)
    zones: dict[str, Zone] = Field(default_factory=dict)
    locations: dict[str, Location] = Field(default_factory=dict)
    incompatible: list[tuple[str, str]] = Field(
        default_factory=list, description="pairs of hazard classes kept apart"
    )

    @model_validator(mode="after")
    def _references(self) -> MasterData:
        problems = [
            f"{key_path('materials', g)}: not a GTIN-14"
            for g in self.materials
            if not re.match(_GTIN, g)
        ]
        for name, location in self.locations.items():
            why = location_id_problem(name)
            if why is not None:
                problems.append(f"{key_path('locations', name)}: {why}")
            if location.zone not in self.zones:
                problems.append(f"{key_path('locations', name, 'zone')}: no zone {location.zone!r}")
            problems += [
                f"{key_path('locations', name, 'neighbours')}: no location {n!r}"
                for n in location.neighbours
                if n not in self.locations
            ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def material(self, gtin: str | None) -> Material | None:
        return None if gtin is None else self.materials.get(gtin.zfill(14))

    def near(self, location: str) -> list[str]:
        """The location and its neighbours, both ways round."""
        found = {location, *self.locations[location].neighbours}
        found |= {n for n, loc in self.locations.items() if location in loc.neighbours}
        return sorted(found)

    def misplacement(
        self, material: Material, location: str, classes_near: Mapping[str, Iterable[str]]
    ) -> list[str]:
        """Why ``material`` must not go to ``location``; ``classes_near`` maps each location
        of ``near(location)`` to the hazard classes stored there now. [] when it may."""
        place = self.locations[location]
        zone = self.zones[place.zone]
        reasons: list[str] = []
        klass = material.hazard_class
        if klass not in zone.allowed_classes:
            allowed = ", ".join(zone.allowed_classes) or "none"
            reasons.append(
                f"zone {place.zone} does not allow hazard class {klass} (allows {allowed})"
            )
        if (
            material.temp_max is not None
            and zone.temp_max is not None
            and zone.temp_max > material.temp_max
        ):
            reasons.append(
                f"zone {place.zone} may reach {zone.temp_max:g} degC,"
                f" {material.name} is stored at most at {material.temp_max:g} degC"
            )
        if (
            material.temp_min is not None
            and zone.temp_min is not None
            and zone.temp_min < material.temp_min
        ):
            reasons.append(
                f"zone {place.zone} may fall to {zone.temp_min:g} degC,"
                f" {material.name} is stored at least at {material.temp_min:g} degC"
            )
        bad = {b for a, b in self.incompatible if a == klass} | {
            a for a, b in self.incompatible if b == klass
        }
        for other, classes in sorted(classes_near.items()):
            for found in sorted(set(classes) & bad):
                where = "at" if other == location else "next door at"
                reasons.append(
                    f"hazard class {klass} must not be stored with class {found} ({where} {other})"
                )
        return reasons


def load_toml(path: Path) -> MasterData:
    """The master in a TOML file (``config/stock-master.toml``); ``ValueError`` names the
    file and the key path of each problem."""
    try:
        return MasterData.model_validate(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{path}: {err}") from err
    except ValidationError as err:
        raise ValueError(f"{path}: {problems(err)}") from None


def problems(err: ValidationError) -> str:
    """One line: ``key.path: message; ...`` (the model's own checks carry their paths)."""
    lines = []
    for e in err.errors():
        where = ".".join(str(part) for part in e["loc"])
        message = str(e["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)


class MasterStore:
    """The master in force, kept in ``<data_dir>/stock-master.json``: the newer of the
    file on disk and the TOML given at start-up wins; ``update`` takes only a newer version
    and writes it (atomically: a temporary file renamed) before it is used."""

    FILE = "stock-master.json"

    def __init__(self, data_dir: Path, initial: MasterData) -> None:
        self.path = data_dir / self.FILE
        self.current = initial
        try:
            saved = MasterData.model_validate_json(self.path.read_bytes())
        except (OSError, ValueError):
            saved = None
        if saved is not None and saved.version >= initial.version:
            self.current = saved

    def update(self, data: Mapping[str, Any]) -> tuple[bool, str]:
        """``(applied, why)``: a valid and newer version is saved and used; an equal one is
        a repeat (the retained message again) and ignored; an older or invalid one refused."""
        try:
            new = MasterData.model_validate(data)
        except ValidationError as err:
            return False, f"invalid master data: {problems(err)[:500]}"
        if new.version == self.current.version:
            return False, f"version {new.version} is already in force"
        if new.version < self.current.version:
            return False, f"version {new.version} is older than {self.current.version} in force"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(new.model_dump_json())
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.replace(self.path)
        self.current = new
        return True, f"version {new.version} in force"

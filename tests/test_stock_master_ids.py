"""Location ids a label cannot carry, or that a scan would take for an operation, are
refused in the master: in the TOML file at start-up (naming the file and the key path) and
on the WMS's downlink (a ``stock.master_refused`` event naming them)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.core.stock import StockService
from gateway.storage.log import EventLog
from stock.master import OPERATION_PREFIX, MasterData, load_toml
from stock.session import COMMANDS
from tests.test_stock_service import BASE, SIGNERS, records, settings, token

ROOT = Path(__file__).resolve().parent.parent
MASTER = ROOT / "config" / "stock-master.toml"


def with_location(name: str) -> dict[str, Any]:
    master = tomllib.loads(MASTER.read_text())
    master["locations"][name] = {"zone": "mixed"}
    return master


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("CMD:PICK", "operation labels' text"),
        ("cmd:putaway", "operation labels' text"),  # labels are matched in any case
        ("CMD:SOMETHING-NEW", "operation labels' text"),  # the namespace, not only today's
        ("Regal-Ä1", "printable ASCII"),  # the reader's bytes are read as ASCII
        ("A 01", "printable ASCII"),  # a space is lost at a label's end
        ("", "printable ASCII"),
        ("A" * 65, "printable ASCII"),
        ("]C0A-01", "AIM symbology identifier"),
    ],
)
def test_a_location_no_scan_can_reach_is_refused(location: str, why: str) -> None:
    with pytest.raises(ValidationError) as err:
        MasterData.model_validate(with_location(location))
    assert why in str(err.value)


@pytest.mark.parametrize("location", ["C-01", "A1/02.3", "cmd-pick", "R12:S03", "#7"])
def test_a_location_a_label_carries_is_taken(location: str) -> None:
    assert location in MasterData.model_validate(with_location(location)).locations


def test_every_operation_label_is_in_the_refused_namespace() -> None:
    assert all(label.startswith(OPERATION_PREFIX) for label in COMMANDS)


def test_the_toml_file_names_itself_and_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "master.toml"
    path.write_text(MASTER.read_text() + '\n[locations."CMD:PICK"]\n  zone = "mixed"\n')
    with pytest.raises(ValueError, match="operation labels' text") as err:
        load_toml(path)
    assert str(err.value).startswith(f'{path}: locations."CMD:PICK": ')


def test_the_downlink_refuses_it_with_an_event(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "log.sqlite3", {"site": "plant-a", "gateway": "gw-01"}) as log:
        service = StockService.open(settings(tmp_path), {}, log, lambda _: None)
        assert service is not None
        service.master_message(token({**with_location("cmd:pick"), "version": 2}), BASE, SIGNERS)
        said = [(r["type"], r["reason"], r["version"]) for r in records(log)]
    assert service.store.current.version == 1
    ((kind, reason, version),) = said
    assert (kind, version) == ("stock.master_refused", 1)
    assert reason.startswith('invalid master data: locations."cmd:pick": CMD:... is the')

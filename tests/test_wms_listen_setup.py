"""``cellsafe wms-listen`` says what its principal lacks, naming the table or variable."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import pytest
import tomli_w

from gateway.cli import wms_listen

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, principals: dict[str, object]) -> int:
    data = tomllib.loads((ROOT / "config/example.toml").read_text(encoding="utf-8"))
    data["commands"] = {"principals": principals}
    site = tmp_path / "site.toml"
    site.write_text(tomli_w.dumps(data), encoding="utf-8")
    args = argparse.Namespace(config=site, db=tmp_path / "wms.db", principal="wms-main")
    return wms_listen.run(args)


def test_a_principal_missing_from_the_file_names_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, {}) == 1
    err = capsys.readouterr().err
    assert (
        'site.toml has no [commands.principals.wms-main]: add it with classes = ["delivery"]' in err
    )


def test_a_principal_without_delivery_is_told_to_add_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, {"wms-main": {"classes": ["alarm"]}}) == 1
    assert "principal 'wms-main' may not confirm: add \"delivery\"" in capsys.readouterr().err


def test_a_missing_key_names_the_variable_and_the_credential(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CELLSAFE_COMMANDS__KEYS__WMS_MAIN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert _run(tmp_path, {"wms-main": {"classes": ["delivery"]}}) == 1
    assert (
        "no key for principal 'wms-main': set CELLSAFE_COMMANDS__KEYS__WMS_MAIN"
        " or the credential commands__keys__wms_main"
    ) in capsys.readouterr().err

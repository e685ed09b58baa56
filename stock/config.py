"""The ``[stock]`` table: where the master comes from and how codes are read."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stock.master import load_toml


class StockSection(BaseModel):
    """Scan sessions run for every ``driver = "scanner"`` device; without one, nothing here
    is used. The master data's layout is in docs/stock.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    master_file: Path | None = Field(
        None,
        description="TOML file with the material master and locations at start-up;"
        " the WMS's newer versions (downlink stock-master) replace it and are kept in data_dir",
    )
    prefix_length: int = Field(
        7, ge=6, le=12, description="GS1 company prefix length (digits) when biip cannot tell"
    )

    @field_validator("master_file")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        """Checked with the configuration, so a bad master stops ``check-config`` too."""
        if path is not None:
            load_toml(path)  # ValueError naming the file and the key path
        return path

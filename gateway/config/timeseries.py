"""The ``[timeseries]`` table: where the time-series sink (``gateway/sinks/timeseries.py``)
writes, with the InfluxDB 2 write API (``/api/v2/write``), which VictoriaMetrics speaks too.

The token comes from ``CELLSAFE_TIMESERIES__TOKEN`` or the systemd credential
``timeseries__token`` only; the loader refuses it in the TOML file.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class TimeSeriesSection(BaseModel):
    """Off without a ``url``. Every sample arrives through the telemetry records of the log:
    ``[telemetry] interval`` at or below the poll interval stores every poll."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="base URL of InfluxDB 2 or VictoriaMetrics, e.g. http://127.0.0.1:8428;"
        " none: no time-series sink",
    )
    org: str = Field("cellsafe", min_length=1, description="InfluxDB 2 organisation")
    bucket: str = Field(
        "cellsafe", min_length=1, description="InfluxDB 2 bucket (VictoriaMetrics ignores it)"
    )
    token: SecretStr | None = Field(None, description="environment or credential file only")
    batch: int = Field(
        500,
        ge=1,
        le=100_000,
        description="log records per write (a record holds a device's points)",
    )
    points_per_write: int = Field(
        5000, ge=1, le=1_000_000, description="lines per HTTP request; a batch takes several"
    )
    timeout: float = Field(10.0, gt=0, le=300, description="seconds one write may take")
    gzip: bool = Field(False, description="compress write bodies (slow links)")
    health: bool = Field(
        True,
        description="also store the gateway's health (poll latency, errors, overruns, sink"
        " backlogs) as points of the device 'gateway', every 5 s",
    )

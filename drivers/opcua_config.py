"""The ``opcua`` device table: an OPC UA server (a fire panel, a gas controller, a PLC).

How the session is secured is the ``security`` sub-table, a union told apart by its
``policy``: ``None`` (the lab) or ``Basic256Sha256`` with ``mode`` Sign or SignAndEncrypt
(OPC 10000-7, the Basic256Sha256 profile). Who the gateway is to the server is the
``identity`` sub-table, told apart by its ``type``: ``anonymous``, ``username`` (the
password from an environment variable or a credential file, never the TOML file) or
``certificate``.

Points name a variable by NodeId (``ns=2;s=Zone1.State``, OPC 10000-6, 5.3.1.10) or by a
browse path of qualified names from the Objects folder (``["2:FirePanel", "2:Zone1",
"2:State"]``), resolved once per connection. ``[[devices.conditions]]`` name alarms of the
server's Alarms & Conditions (OPC 10000-9) by SourceName and ConditionName; each becomes
a binary point, true while the condition is active, that a zone's ``[[zones.inputs]]``
turns into a gateway alarm.

The commented sample lives in ``config/drivers/opcua.toml``; a test loads it through
this model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drivers.base import DeviceConfig, PointInfo
from vocab.ids import NAME_PATTERN

_TABLE = ConfigDict(extra="forbid", frozen=True)


class NoSecurity(BaseModel):
    """No signing, no encryption: for the lab only."""

    model_config = _TABLE
    policy: Literal["None"]


class Basic256Sha256(BaseModel):
    """Basic256Sha256 with the gateway's application certificate (``cellsafe opcua-cert``).

    The server's certificate must be in ``trust_dir`` (PEM or DER, or its issuer's);
    a certificate that is not, or is outside its validity, refuses the connection.
    """

    model_config = _TABLE
    policy: Literal["Basic256Sha256"]
    mode: Literal["Sign", "SignAndEncrypt"] = Field(
        "SignAndEncrypt", description="message security mode"
    )
    certificate: Path = Field(description="the gateway's application certificate (DER or PEM)")
    private_key: Path = Field(description="its private key (PEM)")
    trust_dir: Path = Field(description="directory of trusted server (or CA) certificates")
    application_uri: str = Field(
        "urn:cellsafe:gateway",
        min_length=1,
        description="the application URI in the certificate, as the server expects it",
    )


Security = Annotated[NoSecurity | Basic256Sha256, Field(discriminator="policy")]


class Anonymous(BaseModel):
    model_config = _TABLE
    type: Literal["anonymous"]


class UserName(BaseModel):
    """User name and password. The password comes from ``password_env`` (an environment
    variable's name) or ``password_file`` (a file; a bare name is looked up in systemd's
    ``$CREDENTIALS_DIRECTORY``), never from this file."""

    model_config = _TABLE
    type: Literal["username"]
    username: str = Field(min_length=1)
    password_env: str | None = Field(None, description="environment variable with the password")
    password_file: Path | None = Field(None, description="file with the password")

    @model_validator(mode="after")
    def _one_source(self) -> UserName:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env and password_file")
        return self

    def password(self) -> str:
        """The password, read now; ``LookupError`` naming where it was looked for."""
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise LookupError(f"environment variable {self.password_env} is not set")
            return value
        assert self.password_file is not None
        path = self.password_file
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not path.is_absolute() and directory:
            path = Path(directory) / path
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise LookupError(f"password file {path}: {err.strerror}") from err


class CertificateIdentity(BaseModel):
    """An X.509 user certificate and its key as the session's identity."""

    model_config = _TABLE
    type: Literal["certificate"]
    certificate: Path
    private_key: Path


Identity = Annotated[Anonymous | UserName | CertificateIdentity, Field(discriminator="type")]

PointType = Literal["number", "bool", "text"]


class OpcuaPoint(BaseModel):
    """``[[devices.points]]``: one variable, by ``node_id`` or by ``browse_path``."""

    model_config = _TABLE
    key: str = Field(pattern=NAME_PATTERN, max_length=64)
    node_id: str | None = Field(None, description="NodeId string, e.g. ns=2;s=Zone1.Smoke")
    browse_path: tuple[str, ...] | None = Field(
        None,
        min_length=1,
        description='qualified names from the Objects folder, e.g. ["2:FirePanel", "2:Zone1"]',
    )
    type: PointType = Field("number", description="number, bool (a binary point) or text")
    unit: str | None = None
    writable: bool = Field(False, description="the gateway may write it (a relay, a reset)")
    mode: Literal["subscribe", "poll"] | None = Field(
        None, description="default: the device's mode"
    )
    deadband: float = Field(
        0.0,
        ge=0,
        description="absolute deadband in the point's unit: smaller changes are not reported "
        "(OPC 10000-4, 7.22.2; numbers on subscriptions only)",
    )

    @model_validator(mode="after")
    def _one_address(self) -> OpcuaPoint:
        if (self.node_id is None) == (self.browse_path is None):
            raise ValueError("give exactly one of node_id and browse_path")
        if self.deadband and self.type != "number":
            raise ValueError("deadband applies to number points only")
        return self

    @property
    def address(self) -> str:
        """The NodeId or the browse path, for messages."""
        return self.node_id if self.node_id is not None else "/".join(self.browse_path or ())


class OpcuaCondition(BaseModel):
    """``[[devices.conditions]]``: one Alarms & Conditions condition as a binary point.

    The point is true while an event of the condition says ActiveState true with a
    Severity of at least ``min_severity`` (1-1000, OPC 10000-5, BaseEventType).
    """

    model_config = _TABLE
    key: str = Field(pattern=NAME_PATTERN, max_length=64, description="the binary point's key")
    source: str = Field(min_length=1, description="the events' SourceName, e.g. Zone1")
    condition: str | None = Field(None, description="the ConditionName; default: any")
    min_severity: int = Field(1, ge=1, le=1000, description="lowest severity that counts")
    acknowledge: bool = Field(
        False,
        description="pass an operator's acknowledge in the gateway back to the server "
        "(the condition's Acknowledge method)",
    )


class OpcuaConfig(DeviceConfig):
    driver: Literal["opcua"]
    endpoint: str = Field(pattern=r"^opc\.tcp://", description="e.g. opc.tcp://10.0.0.5:4840")
    timeout: float = Field(4.0, gt=0, le=60, description="seconds to wait for one reply")
    mode: Literal["subscribe", "poll"] = Field(
        "subscribe",
        description="subscribe: data-change monitored items; poll: a batched Read every "
        "poll_interval (servers without subscriptions)",
    )
    publishing_interval: float = Field(
        0.5, gt=0, le=3600, description="seconds between the server's notifications"
    )
    sampling_interval: float = Field(
        0.25, ge=0, le=3600, description="seconds between the server's samples of a variable"
    )
    queue_size: int = Field(
        10, ge=1, le=10000, description="count of changes each monitored item holds"
    )
    keepalive: float = Field(
        1.0, gt=0, le=60, description="seconds between checks that the server still answers"
    )
    restate_interval: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="seconds between re-publishing the held values of subscribed points and "
        "conditions while the session is alive, and bad samples while it is not, so that "
        "the rules' staleness checks (stale_after, fault_delay) see a quiet point as live",
    )
    reconnect_min: float = Field(0.5, gt=0, le=60, description="first reconnect delay, seconds")
    reconnect_max: float = Field(30.0, gt=0, le=3600, description="longest reconnect delay")
    max_nodes_per_read: int = Field(
        500, ge=1, le=10000, description="count of nodes in one Read request when polling"
    )
    security: Security = Field(default_factory=lambda: NoSecurity(policy="None"))
    identity: Identity = Field(default_factory=lambda: Anonymous(type="anonymous"))
    points: list[OpcuaPoint] = Field(default_factory=list)
    conditions: list[OpcuaCondition] = Field(default_factory=list)

    @field_validator("endpoint")
    @classmethod
    def _no_credentials_in_the_url(cls, endpoint: str) -> str:
        if "@" in endpoint.partition("://")[2].partition("/")[0]:
            raise ValueError(
                "the endpoint must not carry a user or password: use [devices.identity]"
            )
        return endpoint

    @field_validator("points")
    @classmethod
    def _unique_points(cls, points: list[OpcuaPoint]) -> list[OpcuaPoint]:
        _unique([p.key for p in points])
        return points

    @model_validator(mode="after")
    def _keys(self) -> OpcuaConfig:
        if not self.points and not self.conditions:
            raise ValueError("a device needs at least one point or condition")
        _unique([p.key for p in self.points] + [c.key for c in self.conditions])
        if self.reconnect_min > self.reconnect_max:
            raise ValueError("reconnect_min is above reconnect_max")
        return self

    def point_infos(self) -> Sequence[PointInfo]:
        return [
            PointInfo(key=p.key, binary=p.type == "bool", writable=p.writable, unit=p.unit)
            for p in self.points
        ] + [PointInfo(key=c.key, binary=True, writable=False) for c in self.conditions]


def _unique(keys: list[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"point key {key!r} is used twice")
        seen.add(key)

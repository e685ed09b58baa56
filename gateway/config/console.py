"""``[console]``: the local operator console (``gateway/console/``, docs/console.md).

Off unless ``listen`` is set. Operator accounts live in ``users_file`` (argon2 hashes made
by ``cellsafe console-user``, never plain passwords). Bound beyond loopback, the console
serves HTTPS only: a non-loopback ``listen`` without ``tls`` is refused at start-up.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ConsoleTls(BaseModel):
    """The console's certificate (PEM); the table's presence switches HTTPS on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_file: Path = Field(description="certificate chain, PEM")
    key_file: Path = Field(description="its private key, PEM (a file or systemd credential)")

    @model_validator(mode="after")
    def _files(self) -> ConsoleTls:
        for name in ("cert_file", "key_file"):
            path = getattr(self, name)
            if not path.is_file():
                raise ValueError(f"{name} {str(path)!r} is not a readable file")
        return self


def is_loopback(host: str) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ::1; anything else counts as beyond."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ConsoleSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str | None = Field(
        None,
        pattern=r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+):\d+$",
        description="host:port to serve on, e.g. 127.0.0.1:8443; none: no console",
    )
    users_file: Path | None = Field(
        None, description="operator accounts, 'name:role:lang:argon2-hash' lines"
    )
    tls: ConsoleTls | None = Field(None, description="required when listen is not loopback")
    idle_timeout: float = Field(
        900.0,
        gt=0,
        le=86400,
        description="seconds without a request or open live page that end a session, and"
        " without user interaction after which an action needs the password again",
    )
    session_lifetime: float = Field(
        43200.0, gt=0, le=7 * 86400, description="seconds after sign-in that end a session"
    )
    sessions_per_account: int = Field(
        8,
        ge=1,
        le=256,
        description="sessions one account may hold; one more ends its least recently seen",
    )
    language: Literal["en", "zh"] = Field(
        "en", description="when neither the user nor the browser says which"
    )
    trend_samples: int = Field(
        900, ge=10, le=100_000, description="recent samples kept in memory per point"
    )
    events_kept: int = Field(
        2000, ge=10, le=100_000, description="recent events kept in memory for the event log"
    )
    push_interval: float = Field(
        1.0, gt=0, le=60, description="seconds between live value updates pushed to browsers"
    )

    @model_validator(mode="after")
    def _safe_bind(self) -> ConsoleSection:
        if self.listen is None:
            return self
        host = self.listen.rsplit(":", 1)[0]
        if self.tls is None and not is_loopback(host):
            raise ValueError(
                f"listen {self.listen!r} is beyond loopback: add [console.tls] cert_file and"
                " key_file, or listen on 127.0.0.1"
            )
        if self.users_file is None:
            raise ValueError("a console needs users_file (see `cellsafe console-user`)")
        if not self.users_file.is_file():
            raise ValueError(
                f"users_file {str(self.users_file)!r} is not a readable file"
                " (create it with `cellsafe console-user`)"
            )
        if self.idle_timeout > self.session_lifetime:
            raise ValueError("idle_timeout is longer than session_lifetime")
        return self

    @property
    def host_port(self) -> tuple[str, int]:
        assert self.listen is not None
        host, port = self.listen.rsplit(":", 1)
        return host.strip("[]"), int(port)

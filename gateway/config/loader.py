"""Read a TOML file into ``GatewaySettings``, or fail with one line per problem.

A problem line names the file and the key path (``example.toml: devices[2].points[0].address:
must be 0..65535``) so that a plant engineer never has to read a traceback.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from drivers import registry
from gateway.config.settings import GatewaySettings
from gateway.config.validators import Problem, check_references

_SECRET_KEYS = (
    ("mqtt", "password"),
    ("commands", "alarm_token"),
    ("commands", "status_token"),
    ("commands", "config_token"),
    ("commands", "safety_token"),
    ("commands", "delivery_token"),
    ("commands", "keys"),
    ("notify", "secrets"),
    ("timeseries", "token"),
)


class ConfigError(Exception):
    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [
            f"{self.source}: {p.path}: {p.message}" if p.path else f"{self.source}: {p.message}"
            for p in self.problems
        ]


# Shipped class defaults: found beside the package tree (a checkout, or /opt/cellsafe).
DEFAULT_BASE = Path(__file__).resolve().parents[2] / "config" / "hazard-classes.toml"


def load_settings(path: Path | str, base: Path | None = DEFAULT_BASE) -> GatewaySettings:
    """``path`` over ``base``: the site file wins key by key, tables are merged deeply."""
    path = Path(path)
    source = path.name
    files = [path]
    if base is not None and base.exists() and base.resolve() != path.resolve():
        _read_toml(base)
        files.insert(0, base)
    raw = _read_toml(path)

    problems = [
        Problem(
            ".".join(keys),
            "secrets do not belong in the config file; set "
            f"CELLSAFE_{'__'.join(keys).upper()}"
            f"{'__<NAME>' if keys[-1] in ('keys', 'secrets') else ''}"
            " or a systemd credential",
        )
        for keys in _SECRET_KEYS
        if _dig(raw, keys) is not None
    ]
    if problems:
        raise ConfigError(source, problems)
    del raw  # pydantic-settings reads the file again; two parsed copies would double the peak

    try:
        settings: GatewaySettings = _settings_class(files)()
    except ValidationError as err:
        raise ConfigError(source, [_blame(_problem(e), e["loc"]) for e in err.errors()]) from err
    problems = check_references(settings)
    if problems:
        raise ConfigError(source, problems)
    return settings


def _settings_class(files: list[Path]) -> type[GatewaySettings]:
    # A function of its own: pydantic keeps the namespace a model class is made in, and
    # in load_settings that would hold the whole parsed file for the life of the process.
    return type(
        "FileSettings", (GatewaySettings,), {"model_config": SettingsConfigDict(toml_file=files)}
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(path.name, [Problem("", f"cannot read: {err.strerror}")]) from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(path.name, [Problem("", f"not valid TOML: {err}")]) from err


def _dig(data: dict[str, Any], keys: Sequence[str]) -> Any:
    node: Any = data
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def format_loc(loc: Sequence[int | str]) -> str:
    """``('devices', 2, 'modbus_tcp', 'port')`` -> ``devices[2].port``;
    ``('devices', 0, 'transport', 'tcp', 'host')`` -> ``devices[0].transport.host``."""
    drivers = set(registry.names())
    out = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (isinstance(previous, int) and part in drivers) or previous == "transport":
            pass  # the tag pydantic adds for a discriminated union member
        else:
            out += f".{part}" if out else part
        previous = part
    return out


def _blame(problem: Problem, loc: Sequence[int | str]) -> Problem:
    """Say so when the value came from the environment, not from the file."""
    if any(isinstance(part, int) for part in loc):
        return problem
    prefix = str(GatewaySettings.model_config.get("env_prefix", ""))
    variable = prefix + "__".join(str(part) for part in loc).upper()
    if variable not in os.environ:
        return problem
    return Problem(problem.path, f"{problem.message} (set by {variable}, not in the file)")


def _problem(error: Any) -> Problem:
    message = error["msg"]
    match error["type"]:
        case "extra_forbidden" | "unexpected_keyword_argument":
            message = "unknown key"
        case "missing":
            message = "required key is missing"
        case "value_error":
            message = message.removeprefix("Value error, ")
        case "union_tag_invalid":  # e.g. a driver or a transport type nobody registered
            ctx = error["ctx"]
            tag_key = str(ctx["discriminator"]).strip("'")
            path = f"{format_loc(error['loc'])}.{tag_key}"
            known = str(ctx["expected_tags"])
            return Problem(path, f"unknown {tag_key} {ctx['tag']!r}, expected one of {known}")
    return Problem(format_loc(error["loc"]), message)

"""The wall clock only stamps: every ``time.time()`` in the gateway is in a place that
stamps a sample, an event or a message (or compares with a timestamp made elsewhere),
never in one that measures a duration. A new
call must be added here on purpose, after checking it stamps."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vocab", "gateway", "drivers", "rules", "stock", "actuators")

STAMPS = {
    ("vocab/clock.py", "<module>"),  # the steady clock's one-time shift
    ("vocab/events.py", "<module>"),  # Event.ts default
    ("drivers/modbus.py", "_read_block"),  # samples' ts
    ("drivers/modbus.py", "_bad_block"),
    # OPC UA samples' ts (the server's own stamp goes to source_ts beside it)
    ("drivers/opcua.py", "write"),
    ("drivers/opcua.py", "_subscribe"),
    ("drivers/opcua.py", "_consume"),
    ("drivers/opcua.py", "_read_points"),
    ("drivers/opcua.py", "_on_event"),
    ("drivers/opcua.py", "_end_refresh"),
    ("drivers/opcua.py", "_condition_sample"),
    ("drivers/opcua.py", "_mark_bad"),
    ("drivers/opcua.py", "_restate"),
    ("drivers/opcua.py", "_subscribe_conditions"),
    ("gateway/core/poller.py", "_poll_once"),
    ("drivers/scanner.py", "_sample"),  # the connected point's ts
    ("drivers/scanner.py", "_read"),  # scans' ts
    ("gateway/storage/health.py", "read"),
    ("gateway/core/health_points.py", "read"),  # the health samples' ts
    ("gateway/core/telemetry.py", "flush"),
    ("gateway/app.py", "_publish_state"),
    ("gateway/uplink/mqtt.py", "_online"),
    ("gateway/cli/sign.py", "run"),  # a signed command's iat
    ("gateway/cli/wms_listen.py", "_request"),  # the reference consumer's requests' iat
}
# Compared with a timestamp made on another machine (a signed command's iat): only the
# wall clock means anything there.
FOREIGN_TIMESTAMPS = {
    ("gateway/uplink/commands.py", "__init__"),  # the clock of MqttCommands
    ("gateway/core/stock.py", "master_message"),  # the signed master's iat
}


def wall_clock_calls() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            scopes: list[tuple[ast.AST, str]] = [(tree, "<module>")]
            while scopes:
                node, scope = scopes.pop()
                for child in ast.iter_child_nodes(node):
                    name = scope
                    if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                        name = child.name
                    if (
                        isinstance(child, ast.Call)
                        and isinstance(child.func, ast.Attribute)
                        and child.func.attr == "time"
                        and isinstance(child.func.value, ast.Name)
                        and child.func.value.id == "time"
                    ) or (isinstance(child, ast.Attribute) and ast.unparse(child) == "time.time"):
                        found.add((str(path.relative_to(ROOT)), name))
                    scopes.append((child, name))
    return found


def test_the_wall_clock_is_read_only_where_it_stamps() -> None:
    assert wall_clock_calls() - STAMPS - FOREIGN_TIMESTAMPS == set()

"""The service as installed: ``cellsafe install --root``, the unit's checks, the socket's group."""

from __future__ import annotations

import asyncio
import grp
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from gateway.cli.install import UNIT, UNIT_SOURCE
from gateway.core.commands import CommandRouter
from gateway.core.control import ControlServer
from tests.lab import cli

CELLSAFE = Path(sys.executable).parent / "cellsafe"
EXPOSURE_TARGET = 1.5  # the ceiling, with serial ports allowed
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)"
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_install_writes_everything_with_its_mode_and_a_second_run_changes_nothing(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    first = cli("install", "--root", str(root), "--cellsafe", str(CELLSAFE))
    assert first.returncode == 0, first.stderr
    assert "skipped: user cellsafe" in first.stdout
    unit = root / "etc/systemd/system" / UNIT
    assert f"ExecStart={CELLSAFE} run --config /etc/cellsafe/gateway.toml" in unit.read_text()
    assert _mode(unit) == 0o644
    assert _mode(root / "etc/cellsafe/credentials") == 0o700
    assert _mode(root / "etc/cellsafe/credentials/mqtt__password") == 0o600
    token = root / "etc/cellsafe/credentials/commands__keys__wms"
    assert _mode(token) == 0o600
    assert len(token.read_text()) >= 32, "the gateway refuses a shorter signing key"
    assert "[commands.principals.wms]" in (root / "etc/cellsafe/gateway.toml").read_text()
    assert _mode(root / "etc/cellsafe/gateway.toml") == 0o640
    assert _mode(root / "var/lib/cellsafe") == 0o711
    link = root / "etc/systemd/system/multi-user.target.wants" / UNIT
    assert str(link.readlink()) == f"/etc/systemd/system/{UNIT}"
    check = cli("check-config", str(root / "etc/cellsafe/gateway.toml"))
    assert check.returncode == 0, check.stdout + check.stderr

    secret = token.read_text()
    (root / "etc/cellsafe/gateway.toml").write_text("# the site's own\n")
    second = cli("install", "--root", str(root), "--cellsafe", str(CELLSAFE))
    assert second.returncode == 0, second.stderr
    changed = [line for line in second.stdout.splitlines() if not line.startswith(("kept", "skip"))]
    assert changed == []
    assert token.read_text() == secret
    assert (root / "etc/cellsafe/gateway.toml").read_text() == "# the site's own\n"


def test_uninstall_keeps_configuration_and_data_unless_purged(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert cli("install", "--root", str(root)).returncode == 0
    (root / "var/lib/cellsafe/outbox.sqlite3").write_bytes(b"events")
    for _ in range(2):  # idempotent
        kept = cli("uninstall", "--root", str(root))
        assert kept.returncode == 0, kept.stderr
        assert not (root / "etc/systemd/system" / UNIT).exists()
        assert not (root / "etc/systemd/system/multi-user.target.wants" / UNIT).is_symlink()
        assert (root / "var/lib/cellsafe/outbox.sqlite3").read_bytes() == b"events"
        assert (root / "etc/cellsafe/gateway.toml").exists()
    purged = cli("uninstall", "--root", str(root), "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not (root / "var/lib/cellsafe").exists()
    assert not (root / "etc/cellsafe").exists()


def test_the_unit_is_a_notify_service_with_a_watchdog_that_restarts_on_failure() -> None:
    text = UNIT_SOURCE.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=30",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=cellsafe",
        "SupplementaryGroups=dialout cellsafe-operators",
        "DeviceAllow=char-ttyUSB rw",
        "DeviceAllow=char-ttyACM rw",
        "DeviceAllow=char-ttyS rw",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    assert not re.search(r"^(PrivateUsers|PrivateDevices)=yes", text, re.M), "hides serial ports"


@pytest.fixture
def installed_unit(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    assert cli("install", "--root", str(root), "--cellsafe", str(CELLSAFE)).returncode == 0
    return root / "etc/systemd/system" / UNIT


@needs_analyze
def test_systemd_analyze_verify_accepts_the_installed_unit(installed_unit: Path) -> None:
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "verify", str(installed_unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr


@needs_analyze
def test_systemd_analyze_security_rates_the_unit_within_the_target(installed_unit: Path) -> None:
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "security", "--offline=yes", str(installed_unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= EXPOSURE_TARGET, result.stdout
    # The same ceiling as systemd checks it: 1.5 is 15 on the --threshold scale.
    strict = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--threshold=15", str(installed_unit)],
        capture_output=True,
        timeout=60,
    )
    assert strict.returncode == 0


class _Router:
    def handle(self, name: str, args: dict[str, Any], channel: str) -> dict[str, Any]:
        return {"ok": True, "command": name}


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other users may traverse (pytest's own are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="cellsafe-sock-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path)


ASK = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    sys.exit(3)
s.sendall(b'{"command": "status"}\\n')
print(s.recv(1000).decode())
"""


SYSTEM_PYTHON = "/usr/bin/python3"  # one every user may run (the venv's may sit under /root)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
@pytest.mark.skipif(not Path(SYSTEM_PYTHON).exists(), reason="no /usr/bin/python3")
def test_the_control_socket_serves_the_operators_group_and_no_one_else(shared_dir: Path) -> None:
    group = "dialout"  # a group Debian always has; the service would use cellsafe-operators
    path = shared_dir / "control.sock"
    router = cast(CommandRouter, _Router())

    async def scenario() -> tuple[subprocess.CompletedProcess[str], ...]:
        async with ControlServer(path, router, group):
            assert _mode(path) == 0o660
            assert path.stat().st_gid == grp.getgrnam(group).gr_gid

            def ask(groups: list[str]) -> subprocess.CompletedProcess[str]:
                return subprocess.run(
                    [SYSTEM_PYTHON, "-c", ASK, str(path)],
                    user="nobody",
                    group="nogroup",
                    extra_groups=groups,
                    capture_output=True,
                    text=True,
                    timeout=30,
                )

            return (
                await asyncio.to_thread(ask, [group]),
                await asyncio.to_thread(ask, []),
            )

    member, outsider = asyncio.run(scenario())
    assert member.returncode == 0, member.stderr
    assert '"ok": true' in member.stdout
    assert outsider.returncode == 3, outsider.stdout + outsider.stderr


def test_a_missing_operators_group_leaves_a_working_socket_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "control.sock"

    async def scenario() -> None:
        async with ControlServer(path, cast(CommandRouter, _Router()), "no-such-group-x"):
            assert path.is_socket()
            assert _mode(path) == 0o660

    asyncio.run(scenario())
    assert "cannot give it to group no-such-group-x (no such group)" in caplog.text

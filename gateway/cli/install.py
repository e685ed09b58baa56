"""``cellsafe install`` / ``uninstall``: the gateway as a systemd service, idempotently.

Install creates the directories, the unit (its ``ExecStart`` pointed at this ``cellsafe``),
an example configuration and the credential files, then enables the service. It never
overwrites a site's configuration or secrets: a second run changes only what differs.
Uninstall disables and removes the unit and keeps configuration and data unless
``--purge``.

With ``--root DIR`` (a system image, or a test) everything is written under DIR, and the
steps that act on the running system are skipped and said to be: creating the ``cellsafe``
user and the ``cellsafe-operators`` group (``useradd``/``groupadd`` edit the live
``/etc/passwd``), giving files to them, and ``systemctl daemon-reload``. Enabling is the
``multi-user.target.wants`` link ``systemctl enable`` would make, written directly.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNIT = "cellsafe-gateway.service"
UNIT_SOURCE = ROOT / "systemd" / UNIT
EXAMPLE_CONFIG = ROOT / "config" / "example.toml"
INSTALLED_CELLSAFE = "/opt/cellsafe/.venv/bin/cellsafe"
USER = "cellsafe"
OPERATORS = "cellsafe-operators"
CONFIG_DIR = Path("etc/cellsafe")
CREDENTIALS_DIR = CONFIG_DIR / "credentials"
DATA_DIR = Path("var/lib/cellsafe")
UNIT_DIR = Path("etc/systemd/system")
WANTS = UNIT_DIR / "multi-user.target.wants"
#: Credential files the unit loads: the MQTT password is the site's to fill in (empty: no
#: password); the WMS principal's signing key is made random, for the WMS to be given.
CREDENTIALS = {"mqtt__password": False, "commands__keys__wms": True}
#: Appended to a newly written configuration, so that the key above belongs to someone.
WMS_PRINCIPAL = """
## Added by `cellsafe install`: the WMS signs its MQTT commands as the principal "wms",
## with the key in /etc/cellsafe/credentials/commands__keys__wms (docs/uplink.md, "Signed
## commands"). Give it the classes it needs: alarm, status, safety, config, delivery.
[commands.principals.wms]
classes = ["alarm", "status", "delivery"]
"""


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    install = commands.add_parser("install", help="install and enable the systemd service")
    install.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        metavar="DIR",
        help="install under DIR (an image; default: /)",
    )
    install.add_argument(
        "--cellsafe",
        type=Path,
        default=None,
        help="the cellsafe command the unit runs (default: this one)",
    )
    install.add_argument("--no-enable", action="store_true", help="do not enable the service")
    uninstall = commands.add_parser("uninstall", help="disable and remove the systemd service")
    uninstall.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        metavar="DIR",
        help="remove from under DIR (default: /)",
    )
    uninstall.add_argument(
        "--purge", action="store_true", help="also delete configuration, secrets and data"
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.command == "install":
            lines = install(args.root, args.cellsafe or _this_cellsafe(), not args.no_enable)
        else:
            lines = uninstall(args.root, args.purge)
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"cellsafe {args.command}: {err}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


def _this_cellsafe() -> Path:
    found = Path(sys.executable).parent / "cellsafe"
    return found if found.exists() else Path(INSTALLED_CELLSAFE)


def _live(root: Path) -> bool:
    return root.resolve() == Path("/")


def install(root: Path, cellsafe: Path, enable: bool = True) -> list[str]:
    """Install under ``root``; returns one line per step: what was done, kept or skipped."""
    done: list[str] = []
    live = _live(root)
    if live:
        done += _create_accounts()
    else:
        done.append(f"skipped: user {USER} and group {OPERATORS} (only with --root /)")

    for rel, mode in (
        (CONFIG_DIR, 0o755),
        (CREDENTIALS_DIR, 0o700),
        (DATA_DIR, 0o711),
        (UNIT_DIR, 0o755),
    ):
        done.append(_directory(root / rel, mode))

    unit = UNIT_SOURCE.read_text().replace(INSTALLED_CELLSAFE, str(cellsafe))
    done.append(_file(root / UNIT_DIR / UNIT, unit, 0o644, replace=True))
    config = root / CONFIG_DIR / "gateway.toml"
    done.append(_file(config, EXAMPLE_CONFIG.read_text() + WMS_PRINCIPAL, 0o640, replace=False))
    for name, random in CREDENTIALS.items():
        content = secrets.token_urlsafe(36) if random else ""  # 48 characters
        done.append(_file(root / CREDENTIALS_DIR / name, content, 0o600, replace=False))
    if live:
        # The service reads its configuration as its own user (ExecStartPre check-config);
        # the state directory is systemd's to give to the user (StateDirectory=).
        shutil.chown(config, "root", USER)
        done.append(f"owner root:{USER}: {config}")

    if enable:
        link = root / WANTS / UNIT
        done.append(_directory(root / WANTS, 0o755))
        if link.is_symlink() and str(link.readlink()) == f"/{UNIT_DIR}/{UNIT}":
            done.append(f"kept: {link}")
        else:
            link.unlink(missing_ok=True)
            link.symlink_to(f"/{UNIT_DIR}/{UNIT}")
            done.append(f"enabled: {link}")
    done += _daemon_reload(live)
    return done


def uninstall(root: Path, purge: bool = False) -> list[str]:
    done: list[str] = []
    live = _live(root)
    if live and _systemd_running():
        subprocess.run(["systemctl", "stop", UNIT], check=False)
    for path in (root / WANTS / UNIT, root / UNIT_DIR / UNIT):
        if path.is_symlink() or path.exists():
            path.unlink()
            done.append(f"removed: {path}")
    done += _daemon_reload(live)
    if not purge:
        done.append(f"kept: {root / CONFIG_DIR} and {root / DATA_DIR} (--purge deletes them)")
        return done
    for rel in (CONFIG_DIR, DATA_DIR):
        if (root / rel).exists():
            shutil.rmtree(root / rel)
            done.append(f"removed: {root / rel}")
    if live:
        if _exists(pwd.getpwnam, USER):
            subprocess.run(["userdel", USER], check=True)
            done.append(f"removed: user {USER}")
        if _exists(grp.getgrnam, OPERATORS):
            subprocess.run(["groupdel", OPERATORS], check=True)
            done.append(f"removed: group {OPERATORS}")
    return done


def _create_accounts() -> list[str]:
    done = []
    if _exists(grp.getgrnam, OPERATORS):
        done.append(f"kept: group {OPERATORS}")
    else:
        subprocess.run(["groupadd", "--system", OPERATORS], check=True)
        done.append(f"created: group {OPERATORS} (add the operators to it)")
    if _exists(pwd.getpwnam, USER):
        subprocess.run(
            ["usermod", "--append", "--groups", f"dialout,{OPERATORS}", USER], check=True
        )
        done.append(f"kept: user {USER} (in dialout and {OPERATORS})")
    else:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--home-dir",
                "/var/lib/cellsafe",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--groups",
                f"dialout,{OPERATORS}",
                USER,
            ],
            check=True,
        )
        done.append(f"created: user {USER} in dialout and {OPERATORS}")
    return done


def _exists(lookup: Callable[[str], object], name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def _directory(path: Path, mode: int) -> str:
    existed = path.is_dir()
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    return f"{'kept' if existed else 'created'}: {path} ({mode:04o})"


def _file(path: Path, content: str, mode: int, replace: bool) -> str:
    if path.exists() and (not replace or path.read_text() == content):
        path.chmod(mode)
        return f"kept: {path} ({mode:04o})"
    verb = "updated" if path.exists() else "created"
    # Made with its mode from the start: a secret is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(content)
    path.chmod(mode)
    return f"{verb}: {path} ({mode:04o})"


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _daemon_reload(live: bool) -> list[str]:
    if not live:
        return ["skipped: systemctl daemon-reload (only with --root /)"]
    if not _systemd_running():
        return ["skipped: systemctl daemon-reload (systemd is not running)"]
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    return ["done: systemctl daemon-reload"]

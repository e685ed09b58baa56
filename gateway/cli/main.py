"""``cellsafe``: run the gateway, check a config file, run the simulator or the demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.cli import alarm as alarm_cli
from gateway.cli import console_user, logs, wms_listen
from gateway.cli import install as install_cli
from gateway.cli import opcua_cert as opcua_cert_cli
from gateway.cli import safety as safety_cli
from gateway.cli import sign as sign_cli
from gateway.config import ConfigError, GatewaySettings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `cellsafe status | head`: the reader left. Python's documented remedy: point
        # stdout at /dev/null so that the flush at exit does not fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="cellsafe", description=__doc__)
    parser.add_argument("--version", action="version", version=f"cellsafe {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the gateway")
    run.add_argument("--config", "-c", type=Path, required=True, help="gateway TOML file")

    reload = commands.add_parser("reload", help="make the running gateway re-read its file")
    reload.add_argument("--config", "-c", type=Path, required=True, help="gateway TOML file")
    reload.add_argument("--by", required=True, help="your name, for the audit trail")

    check = commands.add_parser("check-config", help="validate a config file and summarise it")
    check.add_argument("config", type=Path, help="gateway TOML file")

    sim = commands.add_parser("sim", help="run the warehouse simulator on its own")
    sim.add_argument("--host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1)")
    sim.add_argument(
        "--port", type=_tcp_port, default=5020, help="Modbus TCP port, 1-65535 (default: 5020)"
    )
    sim.add_argument(
        "--scenario", default="hot_zone", help="scenario name or TOML file (default: hot_zone)"
    )
    sim.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    sim.add_argument(
        "--rtu-baudrate",
        type=int,
        help="also serve both units as RTU slaves on a software RS-485 line at this bit/s",
    )

    status = commands.add_parser("status", help="the running gateway's live state")
    status.add_argument("--config", "-c", type=Path, required=True, help="gateway TOML file")

    alarm_cli.add_parser(commands)
    safety_cli.add_parser(commands)
    wms_listen.add_parser(commands)

    install_cli.add_parsers(commands)
    sign_cli.add_parser(commands)
    console_user.add_parser(commands)
    opcua_cert_cli.add_parser(commands)

    demo = commands.add_parser(
        "demo", help="play the hot-zone, stock and fire-panel stories end to end"
    )
    demo.add_argument(
        "--config",
        "-c",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "config" / "example.toml",
        help="gateway TOML file (default: this checkout's config/example.toml)",
    )
    demo.add_argument(
        "--scenario", default="hot_zone", help="scenario name or TOML file (default: hot_zone)"
    )
    demo.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")

    args = parser.parse_args(argv)
    match args.command:
        case "run":
            return _run(args.config)
        case "check-config":
            return _check(args.config)
        case "reload":
            settings = _load(args.config)
            return 1 if settings is None else alarm_cli.reload(settings, args.by)
        case "safety":
            settings = _load(args.config)
            return 1 if settings is None else safety_cli.run(settings, args)
        case "status":
            settings = _load(args.config)
            return 1 if settings is None else alarm_cli.live_status(settings)
        case "install" | "uninstall":
            return install_cli.run(args)
        case "alarm":
            settings = _load(args.config)
            return 1 if settings is None else alarm_cli.run(settings, args)
        case "sign":
            return sign_cli.run(args)
        case "console-user":
            return console_user.run(args)
        case "opcua-cert":
            return opcua_cert_cli.run(args)
        case "sim":
            from simulators.cli import run_simulator

            logs.configure()
            return run_simulator(args.host, args.port, args.scenario, args.speed, args.rtu_baudrate)
        case "wms-listen":
            logs.configure()
            return wms_listen.run(args)
        case "demo":
            from gateway.cli.demo import run_demo

            return run_demo(args.config, args.scenario, args.speed)
    return 2


def _tcp_port(text: str) -> int:
    """A TCP port to listen on, 1-65535 (0, "any free port", would not be known to anyone)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is outside 1-65535")
    return port


def _load(path: Path) -> GatewaySettings | None:
    try:
        return load_settings(path)
    except ConfigError as err:
        for line in err.lines():
            print(line, file=sys.stderr)
        return None


def _check(path: Path) -> int:
    settings = _load(path)
    if settings is None:
        return 1
    from gateway.cli.summary import summarise

    print(summarise(settings, path))
    return 0


def _run(path: Path) -> int:
    settings = _load(path)
    if settings is None:
        return 1
    logs.configure(settings.log.level, settings.log.format)
    from gateway.app import Gateway
    from gateway.core.service import Notifier

    async def serve() -> None:
        # The runner owns the signals: SIGTERM and SIGINT stop for good (relays as their
        # on_stop says), SIGHUP re-reads the file through the same path as `cellsafe reload`.
        stop = asyncio.Event()
        signalled = asyncio.Event()  # a signal ends the process, even during a reload
        loop = asyncio.get_running_loop()
        notifier = Notifier.from_environ()
        gateway: Gateway | None = None

        def on_signal() -> None:
            signalled.set()
            notifier.stopping()
            if gateway is not None:
                gateway.terminate()
            stop.set()

        def on_hangup() -> None:
            if gateway is not None and not signalled.is_set():
                gateway.reload_on_signal()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
        current: GatewaySettings | None = settings
        try:
            while current is not None:
                gateway = Gateway(current, path, notifier)
                await gateway.run(stop)
                current = None if signalled.is_set() else gateway.next_settings  # reload
                stop.clear()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            notifier.close()

    from gateway.storage.lock import DataDirInUse, data_dir_lock

    try:
        with data_dir_lock(settings.gateway.data_dir), contextlib.suppress(KeyboardInterrupt):
            _event_loop_run(serve(), settings.gateway.event_loop)
    except DataDirInUse as err:
        print(f"{path.name}: {err}", file=sys.stderr)
        return 1
    except Exception:
        logging.getLogger("gateway").critical("gateway failed", exc_info=True)
        return 1
    return 0


def _event_loop_run(coro: Coroutine[Any, Any, None], event_loop: str) -> None:
    if event_loop == "uvloop":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)

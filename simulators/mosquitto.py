"""A private Mosquitto broker on a loopback port, for the demo and the tests.

Debian's package installs the broker but does not start it here; each lab runs its own
with a config file in a temporary directory, and stops it when done, even after a failure.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from simulators.net import free_port, stop_process, wait_for_port


@dataclass(frozen=True, slots=True, kw_only=True)
class SecureListener:
    """TLS, a password file and an ACL, as a site broker should run."""

    cafile: Path
    certfile: Path
    keyfile: Path
    password_file: Path
    acl_file: Path
    require_certificate: bool = False

    def lines(self) -> list[str]:
        return [
            f"cafile {self.cafile}",
            f"certfile {self.certfile}",
            f"keyfile {self.keyfile}",
            f"require_certificate {'true' if self.require_certificate else 'false'}",
            "allow_anonymous false",
            f"password_file {self.password_file}",
            f"acl_file {self.acl_file}",
        ]


def write_password_file(path: Path, users: dict[str, str]) -> Path:
    """Hash the passwords with Mosquitto's own tool, as an operator would."""
    path.write_text("")
    for user, password in users.items():
        subprocess.run(
            [_tool("mosquitto_passwd"), "-b", str(path), user, password],
            check=True,
            capture_output=True,
        )
    return path


def _tool(name: str) -> str:
    for candidate in (name, f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        found = shutil.which(candidate)
        if found:
            return found
    raise FileNotFoundError(f"{name} is not installed (Debian: apt-get install mosquitto)")


def mosquitto_binary() -> str:
    return _tool("mosquitto")


class MosquittoBroker:
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        persistence: bool = False,
        extra_config: str = "",
        secure: SecureListener | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.workdir = workdir
        self._persistence = persistence
        self._extra = extra_config
        self._secure = secure
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def config_file(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def start(self) -> MosquittoBroker:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} {self.host}"]
        lines += self._secure.lines() if self._secure else ["allow_anonymous true"]
        lines += [
            # The default of 1000 silently drops QoS 1 messages queued for a slow subscriber.
            "max_queued_messages 1000000",
            "max_inflight_messages 0",
            f"persistence {'true' if self._persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            # Started as root, mosquitto drops to user 'mosquitto' and then cannot write
            # its persistence file into a private temporary directory.
            "user root",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
            self._extra,
        ]
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.host, self.port, timeout=10)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_process(process, signal.SIGTERM, timeout=10)  # lets mosquitto save its sessions

    def crash(self) -> None:
        """SIGKILL: the broker saves nothing, so what it held in memory alone is lost (a
        session's queued messages, since its last ``autosave_interval``)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

"""A private VictoriaMetrics on a loopback port, for the tests, the benchmark and the demo.

Debian's ``victoria-metrics`` accepts InfluxDB 2 line-protocol writes (``/api/v2/write``)
and keeps each ``<measurement>`` field as the series ``<measurement>_<field>``; it answers
PromQL, not Flux. Started with:

- ``-search.latencyOffset=0s``: a point is searchable as soon as it is flushed;
- ``-dedup.minScrapeInterval=1ms``: a point written twice (same series, same millisecond)
  is kept once, as InfluxDB does by itself; the time-series sink relies on it.

``stop`` and ``start`` again keep the port and the data directory: an outage as the
gateway sees it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from simulators.net import free_port, stop_process, wait_for_port


def victoria_binary() -> str:
    found = shutil.which("victoria-metrics")
    if found is None:
        raise FileNotFoundError(
            "victoria-metrics is not installed (Debian: apt-get install victoria-metrics)"
        )
    return found


class VictoriaMetrics:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> VictoriaMetrics:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir.parent / f"{self.data_dir.name}.log").open("ab")
        with log:
            self._process = subprocess.Popen(
                [
                    victoria_binary(),
                    f"-httpListenAddr={self.host}:{self.port}",
                    f"-storageDataPath={self.data_dir}",
                    "-search.latencyOffset=0s",
                    "-dedup.minScrapeInterval=1ms",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.host, self.port, timeout=15)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_process(process, signal.SIGINT, timeout=15)  # flushes what it holds in memory

    def flush(self) -> None:
        """Make what was written so far searchable."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).close()

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw samples of the series matching ``match`` (a PromQL series selector): one
        ``{"metric": {labels}, "values": [...], "timestamps": [ms, ...]}`` per series."""
        self.flush()
        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as reply:
            return [json.loads(line) for line in reply.read().splitlines() if line.strip()]

    def query(self, expr: str, time_s: float | None = None) -> dict[str, Any]:
        """``/api/v1/query``: the instant query's ``data``."""
        params = {"query": expr, **({"time": str(time_s)} if time_s is not None else {})}
        with urllib.request.urlopen(
            f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=30
        ) as reply:
            body: dict[str, Any] = json.loads(reply.read())
        if body.get("status") != "success":
            raise RuntimeError(f"query {expr!r} failed: {body}")
        data: dict[str, Any] = body["data"]
        return data

    def __enter__(self) -> VictoriaMetrics:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

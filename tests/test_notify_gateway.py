"""The notifier wired into the gateway process: the hot-zone story on real parts
(simulator, Mosquitto, a WMS subscriber) with a webhook on loopback told of the alarm.
The clear and the rest are the planner's and the dispatcher's tests (test_notify*.py)."""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from simulators.mosquitto import MosquittoBroker
from simulators.net import free_port
from tests.conftest import Lab
from tests.lab import hot_zone, lab_config, wait_until

pytestmark = pytest.mark.integration

TOKEN = "gw-hook-T0ken-0042"


class Hook(BaseHTTPRequestHandler):
    posts: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.posts.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # the far end's own log
        pass


@pytest.fixture
def hook() -> Iterator[tuple[int, list[tuple[str, dict[str, Any]]]]]:
    posts: list[tuple[str, dict[str, Any]]] = []
    handler = type("Handler", (Hook,), {"posts": posts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], posts
    finally:
        server.shutdown()
        server.server_close()


def test_the_gateway_tells_the_shift_what_it_did_and_records_it(
    tmp_path: Path,
    broker: MosquittoBroker,
    lab: Lab,
    hook: tuple[int, list[tuple[str, dict[str, Any]]]],
) -> None:
    port, posts = hook
    sim = lab.sim(hot_zone(), 8.0)
    wms = lab.wms(broker.port)
    path = lab_config(tmp_path, sim.port, broker.port, off_delay=2.0, rate_of_rise=100.0)
    data = tomllib.loads(path.read_text())
    data["notify"] = {
        "channels": {
            "hook": {"secret": "hook", "url": f"json://127.0.0.1:{port}/n/{{secret}}"},
            "dead": {"secret": "hook", "url": f"json://127.0.0.1:{free_port()}/n/{{secret}}"},
        },
        "people": {"anna": {"language": "en", "channels": ["hook", "dead"]}},
        "shifts": {
            "always": {
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "start": "00:00",
                "end": "00:00",
                "people": ["anna"],
            }
        },
        "routes": [{"priorities": ["medium", "high", "critical"]}],
        "action_window": 1.0,
        "retry_min": 0.2,
        "retry_max": 0.5,
        "fault_after": 1.0,
    }
    path.write_text(tomli_w.dumps(data))
    gateway = lab.gateway(path, env={"CELLSAFE_NOTIFY__SECRETS__HOOK": TOKEN})

    wait_until(lambda: len(posts) >= 1, 60, "the raise at the webhook")
    raised_path, raised = posts[0]
    assert raised_path == f"/n/{TOKEN}"
    assert raised["title"].startswith("[plant-a] ALARM electrolyte-store")
    assert "exhaust-fan-1 switched on (verified by read-back)" in raised["message"]
    assert "Limit: 30 degC" in raised["message"]

    def recorded() -> list[dict[str, Any]]:
        return [m for m in wms.snapshot() if m["type"] == "notify.sent"]

    wait_until(lambda: len(recorded()) >= 1, 10, "notify.sent on the broker")
    assert recorded()[0]["topic"] == "cellsafe/plant-a/gw-01/events/notify"
    assert recorded()[0]["notify"]["key"] == "raised:electrolyte-store.temperature.high"

    def alarm(alarm_id: str) -> list[dict[str, Any]]:
        return [m for m in wms.snapshot() if m.get("alarm", {}).get("id") == alarm_id]

    # a channel that never answers: its own alarm, itself told through the channel that works
    wait_until(lambda: bool(alarm("gateway.notify.fault")), 10, "gateway.notify.fault raised")
    fault = alarm("gateway.notify.fault")[0]
    assert fault["type"] == "alarm.raised" and fault["alarm"]["priority"] == "high"
    assert "notify channel dead failing" in fault["alarm"]["message"]
    wait_until(lambda: any("gateway.notify.fault" in p["title"] for _, p in posts), 10, "told")
    assert wms.invalid == []
    assert gateway.terminate() == 0
    log = gateway.log.read_text()
    assert "notify: sent raised:electrolyte-store.temperature.high to anna via hook" in log
    assert TOKEN not in log

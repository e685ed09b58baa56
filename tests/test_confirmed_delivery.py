"""Confirmed delivery: a broker that crashes after acknowledging loses nothing for a WMS
that confirms what it has (``[mqtt] delivery = "wms"``), and does lose it otherwise."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest

from gateway.cli.wms_listen import ReferenceConsumer
from simulators.mosquitto import MosquittoBroker
from tests.conftest import Lab
from tests.lab import outbox_rows, quiet_scenario, wait_until, write_config
from tests.test_uplink_security import an_event, config, wait_for_socket

pytestmark = pytest.mark.integration

BASE = "cellsafe/plant-a/gw-01"
KEY = "wms-delivery-key-0123456789abcdef0123"
SIGNER = ("wms", KEY.encode())
ENV = {"CELLSAFE_COMMANDS__KEYS__WMS": KEY}


def confirming_config(tmp_path: Path, sim_port: int, mqtt: dict[str, object]) -> Path:
    """The lab's configuration with a WMS principal that may confirm and ask for resends."""
    path = config(tmp_path, sim_port, mqtt)
    data = tomllib.loads(path.read_text())
    data["commands"] = {"principals": {"wms": {"classes": ["delivery"]}}}
    return write_config(tmp_path, data)


@pytest.mark.parametrize("delivery", ["wms", "broker"])
def test_a_broker_crash_after_its_acknowledgement(delivery: str, tmp_path: Path, lab: Lab) -> None:
    broker = MosquittoBroker(tmp_path / "broker", persistence=True).start()
    consumer: ReferenceConsumer | None = None
    try:
        sim = lab.sim(quiet_scenario(), 1.0)
        path = confirming_config(tmp_path, sim.port, {"port": broker.port, "delivery": delivery})
        lab.gateway(path, env=ENV)
        wait_for_socket(path)
        db = tmp_path / "wms.sqlite3"
        state = tmp_path / "state"

        def numbered() -> int:
            return outbox_rows(state)[1]

        consumer = ReferenceConsumer("127.0.0.1", broker.port, BASE, db, SIGNER).start()
        for _ in range(3):
            an_event(path)
        wait_until(
            lambda: consumer is not None and consumer.watermark == numbered() >= 3, 20, "1-3"
        )
        if delivery == "wms":  # confirmed: off the gateway's disk
            wait_until(lambda: outbox_rows(state)[0] == 0, 20, "1-3 confirmed")

        consumer.stop()  # the WMS is away; its session keeps what the broker acknowledged
        consumer = None
        before = numbered()
        for _ in range(3):
            an_event(path)
        wait_until(lambda: numbered() >= before + 3, 20, "three more stored")
        absent = set(range(before + 1, before + 4))
        if delivery == "broker":  # acknowledged by the broker: gone from the gateway
            wait_until(lambda: outbox_rows(state)[0] == 0, 20, "acknowledged")
        broker.crash()  # before it saved or forwarded them
        broker.start()

        consumer = ReferenceConsumer("127.0.0.1", broker.port, BASE, db, SIGNER).start()
        assert consumer.subscribed.wait(20)
        an_event(path)  # one more, with the WMS back
        last = numbered()
        wait_until(lambda: consumer is not None and last in consumer.seqs(), 30, "the last")
        if delivery == "wms":
            wait_until(
                lambda: consumer is not None and consumer.seqs() == list(range(1, numbered() + 1)),
                30,
                "every event at the WMS",
            )
            wait_until(lambda: outbox_rows(state)[0] == 0, 20, "all confirmed")
        else:
            assert absent.isdisjoint(consumer.seqs())  # they died with the broker
    finally:
        if consumer is not None:
            consumer.stop()
        broker.stop()


def test_confirmations_signed_with_a_wrong_key_are_refused(
    tmp_path: Path, lab: Lab, broker: MosquittoBroker
) -> None:
    sim = lab.sim(quiet_scenario(), 1.0)
    path = confirming_config(tmp_path, sim.port, {"port": broker.port, "delivery": "wms"})
    lab.gateway(path, env=ENV)
    wait_for_socket(path)
    consumer = ReferenceConsumer(
        "127.0.0.1", broker.port, BASE, tmp_path / "wms.sqlite3", ("wms", b"x" * 40)
    ).start()
    try:
        assert consumer.subscribed.wait(20)
        an_event(path)
        wait_until(lambda: consumer.seqs()[:1] == [1], 20, "the event at the WMS")
        # Its confirmation is refused: the event stays on the gateway's disk, and the
        # refusal is audited (seq 2 onwards).
        wait_until(lambda: outbox_rows(tmp_path / "state")[1] >= 2, 20, "a refusal audited")
        assert outbox_rows(tmp_path / "state")[0] >= 1
        wait_until(lambda: "signature" in consumer.last_error, 10, "the consumer told why")
        # It waits before asking again, and its refusals are audited once per window:
        # no refusal feeds the next one.
        numbered = outbox_rows(tmp_path / "state")[1]
        time.sleep(3)
        assert outbox_rows(tmp_path / "state")[1] <= numbered + 1
    finally:
        consumer.stop()

"""One gateway per data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.storage.lock import DataDirInUse, data_dir_lock
from simulators.mosquitto import MosquittoBroker
from tests.conftest import Lab
from tests.lab import cli, lab_config, quiet_scenario, wait_until


def test_a_second_holder_is_refused_and_the_lock_goes_with_the_first(tmp_path: Path) -> None:
    with data_dir_lock(tmp_path):
        assert (tmp_path / "gateway.lock").read_text().strip() == str(os.getpid())
        # flock locks are per open file: a second open in this process conflicts too
        with (
            pytest.raises(DataDirInUse, match=f"process {os.getpid()}"),
            data_dir_lock(tmp_path),
        ):
            pass
    with data_dir_lock(tmp_path):  # released with the first
        pass


@pytest.mark.integration
def test_a_second_gateway_on_the_same_data_directory_is_refused_in_one_line(
    tmp_path: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    sim = lab.sim(quiet_scenario(), 1.0)
    config = lab_config(tmp_path, sim.port, broker.port)
    first = lab.gateway(config)
    wait_until(lambda: cli("alarm", "--config", str(config), "list").returncode == 0, 20, "up")
    second = cli("run", "--config", str(config))
    assert second.returncode == 1
    assert "another gateway (process" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.alive
    assert cli("alarm", "--config", str(config), "list").returncode == 0  # its socket kept

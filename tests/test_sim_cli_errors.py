"""The simulator's command line fails in one line: a scenario it cannot load, a port it
cannot serve on; never a traceback, never a simulator that only seems to serve."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from simulators.scenario import ScenarioError, bundled_scenarios, load_scenario
from tests.lab import cli

ROOT = Path(__file__).resolve().parents[1]


def test_the_bundled_scenarios_are_listed_and_load() -> None:
    names = bundled_scenarios()
    assert {"hot_zone", "thermal_runaway"} <= set(names)
    for name in names:
        assert load_scenario(name).name == name


def test_an_unknown_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ScenarioError, match=r"unknown scenario 'nope'; bundled: hot_zone, "):
        load_scenario("nope")


def test_a_missing_file_bad_toml_and_a_bad_key_each_say_so(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"gone\.toml: cannot read"):
        load_scenario(tmp_path / "gone.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"broken\.toml: not valid TOML"):
        load_scenario(broken)
    odd = tmp_path / "odd.toml"
    odd.write_text(
        'name = "odd"\nduration = 10\ncolour = "red"\n[[zones]]\nname = "a"\n', encoding="utf-8"
    )
    with pytest.raises(ScenarioError, match=r"odd\.toml: colour: Extra inputs"):
        load_scenario(odd)


@pytest.mark.parametrize("command", ["sim", "demo"])
def test_the_command_line_exits_2_without_a_traceback(command: str) -> None:
    done = cli(command, "--scenario", "nope", cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"cellsafe {command}: unknown scenario 'nope'" in done.stderr


def test_a_port_in_use_is_said_at_once_and_not_served_in_pretence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli("sim", "--port", str(port), cwd=ROOT)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"cellsafe sim: simulator cannot serve on 127.0.0.1:{port}: " in done.stderr
    assert "simulator 'hot_zone' on" not in done.stderr


def test_port_0_is_refused_by_the_parser() -> None:
    done = cli("sim", "--port", "0", cwd=ROOT)
    assert done.returncode == 2
    assert "argument --port: 0 is outside 1-65535" in done.stderr


def test_the_demo_finds_its_example_from_any_directory(tmp_path: Path) -> None:
    done = cli("demo", "--scenario", "nope", cwd=tmp_path)
    # The example loaded (no "cannot read"); the scenario is what is refused.
    assert "cannot read" not in done.stderr, done.stderr
    assert "cellsafe demo: unknown scenario 'nope'" in done.stderr

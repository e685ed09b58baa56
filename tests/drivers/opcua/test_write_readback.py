"""An OPC UA output that takes the write but keeps its old value fails the write.

The driver reads every write back (a relay's state must be verified, not assumed): a
server that answers Good to the write while the node stays as it was is an error that
names what was written and what was read.
"""

from __future__ import annotations

import asyncio

import pytest
from asyncua import ua

from drivers.base import WriteError
from simulators.fire_panel import FirePanelServer
from tests.drivers.opcua.conftest import PanelHost
from tests.drivers.opcua.helpers import config, running

SILENCE = {
    "key": "silence",
    "node_id": "ns=2;s=FirePanel.Silence",
    "type": "bool",
    "writable": True,
}


async def _stuck(panel: FirePanelServer) -> None:
    """The panel's Silence output takes every write (Good) and keeps its value."""

    def ignore(node: object, attr: ua.AttributeIds, value: ua.DataValue) -> None:
        return None

    nodeid = ua.NodeId.from_string(panel.node_id("FirePanel.Silence"))
    panel.server.set_attribute_value_setter(nodeid, ignore)


def test_a_write_the_server_takes_but_does_not_keep_is_an_error(own_panel: PanelHost) -> None:
    async def go() -> None:
        async with running(config(own_panel.endpoint, points=[SILENCE])) as (driver, _):
            await driver.write("silence", True)  # a working output: read back as written
            await driver.write("silence", False)
            await own_panel.acall(_stuck)
            with pytest.raises(
                WriteError, match=r"panel\.silence: wrote True, read back False \(good\)"
            ):
                await driver.write("silence", True)

    asyncio.run(go())

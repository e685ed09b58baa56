"""OPC UA driver: data-change subscriptions or batched polling, Alarms & Conditions as
binary points, one supervisor per server connection.

name: opcua
library: asyncua >= 2.1 (the client; the fire-panel simulator is its server)
mode: push (``ServiceDriver``): subscriptions publish as values change; ``mode = "poll"``
reads every point in batched Read requests each ``poll_interval`` and publishes the same way

Layers as in asyncua itself: this module holds the lifecycle (a ``State`` enum and one
supervisor task that connects, resolves browse paths, subscribes, and on a loss marks
every point bad and reconnects with exponential back-off up to ``reconnect_max``);
``opcua_config`` the table, ``opcua_quality`` status codes as quality, ``opcua_events``
condition events as states, ``opcua_security`` certificates, trust and refusals.

Conditions survive a server restart without a double alarm or a lost one: on every
connection the driver calls ConditionRefresh (OPC 10000-9, 5.5.7), and once the server's
RefreshEndEvent has come, every configured condition the refresh did not report is
inactive. A condition's point therefore always ends up at the server's present state,
and the rules, which see only changes of a binary point, raise or clear nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Collection, Coroutine, Sequence
from typing import Any

from asyncua import Client, Node, ua
from asyncua.common.subscription import (
    DataChangeEvent,
    OpcEvent,
    OverflowPolicy,
    StatusChangeEvent,
    Subscription,
)

from drivers import registry
from drivers.base import LinkReport, Publisher, WriteError
from drivers.opcua_config import OpcuaCondition, OpcuaConfig, OpcuaPoint
from drivers.opcua_events import (
    REFRESH_END,
    REFRESH_START,
    ConditionState,
    condition_state,
    event_type,
    holds,
    match,
)
from drivers.opcua_quality import code_name, sample_of
from drivers.opcua_security import Refused, refusal, secure
from vocab.clock import steady
from vocab.ids import point_id
from vocab.samples import Sample, Value

_logger = logging.getLogger(__name__)

# asyncua's client logs every request it sends at DEBUG, an ActivateSession's password
# included: its transport logger never goes below INFO, whatever the root level.
_TRANSPORT_LOGGER = logging.getLogger("asyncua.client.ua_client")
_TRANSPORT_LOGGER.setLevel(max(logging.INFO, _TRANSPORT_LOGGER.level))
# asyncua's subscription logs every PublishResponse, whole, at INFO, the gateway's default
# level: with 10,000 monitored items changing each second, tens of MB of log a minute and a
# quarter more CPU per change (benchmarks/REPORT.md, OPC UA). Its warnings still come.
_SUBSCRIPTION_LOGGER = logging.getLogger("asyncua.common.subscription")
_SUBSCRIPTION_LOGGER.setLevel(max(logging.WARNING, _SUBSCRIPTION_LOGGER.level))

# Notifications waiting for the driver; when full, asyncua's DISCONNECT policy drops the
# connection, so the reconnect re-reads every value rather than silently losing changes.
QUEUE_SIZE = 200_000
_OVERFLOW = OverflowPolicy.DISCONNECT
BATCH = 500  # notifications handed to the rules at once, at most, in a burst
_CLIENT_HANDLE_BASE = 1_000_000  # ours, far from asyncua's own counter (starts at 200)

_VARIANTS = {"bool": ua.VariantType.Boolean, "text": ua.VariantType.String}


class State(enum.Enum):
    """The connection's state, as asyncua's ``UaClientState``."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    REFUSED = "refused"  # the last attempt was refused (certificate, password, policy)
    CLOSED = "closed"


class OpcuaDriver:
    """One OPC UA server; see the module docstring."""

    def __init__(self, config: OpcuaConfig) -> None:
        self._config = config
        self._points = {p.key: p for p in config.points}
        self._conditions = {c.key: c for c in config.conditions}
        # Each point's own mode, or the device's.
        self._subscribed = [p for p in config.points if (p.mode or config.mode) == "subscribe"]
        self._polled = [p for p in config.points if (p.mode or config.mode) == "poll"]
        self._ids = {k: point_id(config.name, k) for k in [*self._points, *self._conditions]}
        self.state = State.DISCONNECTED
        self.last_error: str | None = None
        self.connects = 0  # sessions opened, for tests and status
        self._client: Client | None = None
        self._nodes: dict[str, Node] = {}
        self._keys: dict[ua.NodeId, str] = {}
        self._variants: dict[str, ua.VariantType] = {}
        self._publisher: Publisher | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lost = asyncio.Event()
        self._attempted = asyncio.Event()
        self._pending: list[Sample] = []
        self._held: dict[str, Sample] = {}  # the last sample of each pushed point, by id
        self._flush_scheduled = False
        # Alarms & Conditions: the last state per configured key, and the refresh in progress.
        self._condition_states: dict[str, ConditionState] = {}
        self._refreshing: set[str] | None = None
        self._refreshed = asyncio.Event()

    # -- the Driver protocol -------------------------------------------------------------

    async def start(self, publisher: Publisher) -> None:
        """Start the supervisor; return once the first connection attempt has ended (it
        may have failed: the supervisor keeps trying, and the points are bad meanwhile)."""
        self._publisher = publisher
        self._supervisor = asyncio.create_task(self._supervise(), name=f"opcua-{self._config.name}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), 3 * self._config.timeout)

    def link(self) -> LinkReport:
        return LinkReport(state=self.state.value, error=self.last_error)

    async def read(self, keys: Collection[str] | None = None) -> list[Sample]:
        """A batched Read of the points (all, or ``keys``); bad samples when not connected."""
        wanted = list(self._points) if keys is None else list(keys)
        unknown = set(wanted) - self._points.keys() - self._conditions.keys()
        if unknown:
            raise KeyError(f"{self._config.name}: unknown points {sorted(unknown)}")
        samples = [self._condition_sample(k) for k in wanted if k not in self._points]
        variables = [k for k in wanted if k in self._points]
        return samples + await self._read_points(variables)

    async def write(self, key: str, value: Value) -> None:
        """Write one value to a point marked ``writable``, then read it back.

        ``WriteError`` names the device and the point: not writable in the configuration,
        not connected, refused by the server (with the status code's name), or read back
        as something else.
        """
        point = self._points.get(key)
        name = self._config.name
        if point is None or not point.writable:
            raise WriteError(f"{name}: no writable point {key!r} (writable = true in its table)")
        client, node = self._client, self._nodes.get(key)
        if client is None or node is None or self.state is not State.CONNECTED:
            raise WriteError(f"{name}.{key}: not connected to {self._config.endpoint}")
        variant = ua.Variant(_typed(value, point), self._variants[key])
        try:
            await node.write_attribute(ua.AttributeIds.Value, ua.DataValue(variant))
            back = (await client.read_attributes([node]))[0]
        except (ua.UaError, OSError, TimeoutError, ConnectionError) as err:
            raise WriteError(f"{name}.{key}: refused: {_describe(err)}") from err
        sample = sample_of(self._ids[key], back, point.type == "bool", time.time(), steady())
        if not sample.is_good or sample.value != _typed(value, point):
            raise WriteError(
                f"{name}.{key}: wrote {value!r}, read back {sample.value!r} "
                f"({sample.reason or 'good'})"
            )

    async def close(self) -> None:
        """Stop the supervisor and close the session; the points are left as they were."""
        self.state = State.CLOSED
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._disconnect()

    # -- Alarms & Conditions ------------------------------------------------------------

    def acknowledgeable(self, key: str) -> bool:
        """The condition point ``key`` passes an operator's acknowledge back to the server."""
        condition = self._conditions.get(key)
        return condition is not None and condition.acknowledge

    async def acknowledge(self, key: str, comment: str) -> None:
        """Call the Acknowledge method (OPC 10000-9, 5.7.3) of the condition behind point
        ``key``, with the EventId of its latest event. ``WriteError`` when the config does not
        allow it, the condition has not been seen, or the server refuses."""
        name = self._config.name
        if not self.acknowledgeable(key):
            raise WriteError(f"{name}.{key}: acknowledge = true is not set for this condition")
        state = self._condition_states.get(key)
        client = self._client
        if state is None or state.condition_id is None or state.event_id is None:
            raise WriteError(f"{name}.{key}: no event of this condition seen yet")
        if client is None or self.state is not State.CONNECTED:
            raise WriteError(f"{name}.{key}: not connected to {self._config.endpoint}")
        method = ua.NodeId(ua.Int32(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge))
        try:
            await client.get_node(state.condition_id).call_method(
                method,
                ua.Variant(state.event_id, ua.VariantType.ByteString),
                ua.Variant(ua.LocalizedText(comment), ua.VariantType.LocalizedText),
            )
        except (ua.UaError, OSError, TimeoutError, ConnectionError) as err:
            raise WriteError(f"{name}.{key}: acknowledge refused: {_describe(err)}") from err

    def condition(self, key: str) -> ConditionState | None:
        """The latest reported state of the condition behind point ``key``."""
        return self._condition_states.get(key)

    # -- the supervisor -----------------------------------------------------------------

    async def _supervise(self) -> None:
        delay = self._config.reconnect_min
        while True:
            self.state = State.CONNECTING if self.connects == 0 else State.RECONNECTING
            self._lost.clear()
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                await self._disconnect()
                refused = refusal(err, self._config)
                reason = (
                    str(refused) if refused else f"device {self._config.name}: {_describe(err)}"
                )
                if reason != self.last_error:
                    _logger.warning("%s; retrying in %.1f s", reason, delay)
                self.last_error = reason
                self.state = State.REFUSED if refused else State.DISCONNECTED
                self._attempted.set()
                await self._down(delay, reason)
                delay = min(2 * delay, self._config.reconnect_max)
                continue
            delay = self._config.reconnect_min
            if self.last_error is not None:
                _logger.info("device %s: connected again", self._config.name)
            self.last_error = None
            self.state = State.CONNECTED
            self.connects += 1
            self._attempted.set()
            await self._lost.wait()
            self.state = State.RECONNECTING
            reason = f"connection to {self._config.endpoint} lost"
            _logger.warning("device %s: %s", self._config.name, reason)
            self.last_error = f"device {self._config.name}: {reason}"
            self._mark_bad(reason)
            await self._disconnect()

    async def _down(self, seconds: float, reason: str) -> None:
        """Wait ``seconds`` before the next attempt, every point bad, said again each
        ``restate_interval``: a lost server stays an alarm, however long the back-off."""
        until = steady() + seconds
        while True:
            self._mark_bad(reason)
            left = until - steady()
            if left <= 0:
                return
            await asyncio.sleep(min(left, self._config.restate_interval))

    async def _restate(self) -> None:
        """While the session is alive, the held value of every subscribed point and
        condition again, stamped now: the keep-alives say it still holds."""
        pushed = [self._ids[k] for k in [*(p.key for p in self._subscribed), *self._conditions]]
        while True:
            await asyncio.sleep(self._config.restate_interval)
            if self.state is not State.CONNECTED:
                continue
            now, mono = time.time(), steady()
            held = [self._held[p] for p in pushed if p in self._held]
            self._publish(
                [
                    Sample(s.point, s.value, s.quality, now, mono, s.reason, s.source_ts)
                    for s in held
                ]
            )

    async def _connect(self) -> None:
        """Connect, resolve, subscribe (or start polling), refresh conditions; a step that
        fails leaves the rest undone and ``_disconnect`` unwinds what was opened."""
        config = self._config
        client = Client(
            config.endpoint, timeout=config.timeout, watchdog_intervall=config.keepalive
        )
        client.name = client.description = "CellSafe Gateway"
        client.session_timeout = max(10_000, int(config.keepalive * 10_000))
        self._client = client
        await secure(client, config)
        client.connection_lost_callback = self._connection_lost
        await client.connect(auto_reconnect=False)
        await self._resolve(client)
        subscribed, polled = self._subscribed, self._polled
        if subscribed:
            await self._subscribe(client, subscribed)
        if polled:
            self._publish(await self._read_points([p.key for p in polled]))
            self._spawn(self._poll([p.key for p in polled]), "poll")
        if config.conditions:
            await self._subscribe_conditions(client)
        if subscribed or config.conditions:
            self._spawn(self._restate(), "restate")

    async def _connection_lost(self, exc: Exception) -> None:
        self._lost.set()

    async def _disconnect(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        client, self._client = self._client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.disconnect(), self._config.timeout)
            except Exception as err:  # carry on: the socket is gone either way
                _logger.debug("device %s: disconnect: %r", self._config.name, err)
                with contextlib.suppress(Exception):
                    client.disconnect_socket()

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(
            coro, name=f"opcua-{self._config.name}-{what}"
        )
        task.add_done_callback(self._task_ended)
        self._tasks.append(task)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A consumer or poller that fails ends the session, which the supervisor makes anew:
        the points go bad meanwhile, never silent."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            _logger.error(
                "device %s: %s failed: %r; reconnecting", self._config.name, task.get_name(), error
            )
            self._lost.set()

    async def _resolve(self, client: Client) -> None:
        """NodeIds for every point (browse paths translated in one request) and the
        variant type of every writable one."""
        self._nodes.clear()
        by_path = [p for p in self._config.points if p.browse_path is not None]
        for point in self._config.points:
            if point.node_id is not None:
                try:
                    self._nodes[point.key] = client.get_node(point.node_id)
                except (ValueError, ua.UaError) as err:
                    raise Refused(
                        f"device {self._config.name}: point {point.key}: "
                        f"node_id {point.node_id!r} is no NodeId: {err}"
                    ) from err
        if by_path:
            objects = client.nodes.objects
            for point in by_path:
                assert point.browse_path is not None
                try:
                    self._nodes[point.key] = await objects.get_child(list(point.browse_path))
                except ua.UaStatusCodeError as err:
                    raise RuntimeError(
                        f"point {point.key}: browse path {point.address} not found "
                        f"({code_name(err.code)})"
                    ) from err
        self._keys = {node.nodeid: key for key, node in self._nodes.items()}
        for point in self._config.points:
            if point.writable:
                if point.type in _VARIANTS:
                    self._variants[point.key] = _VARIANTS[point.type]
                else:
                    node = self._nodes[point.key]
                    self._variants[point.key] = await node.read_data_type_as_variant_type()

    async def _subscribe(self, client: Client, points: Sequence[OpcuaPoint]) -> None:
        config = self._config
        sub = await client.create_subscription(
            config.publishing_interval * 1000, queue_maxsize=QUEUE_SIZE, overflow=_OVERFLOW
        )
        requests = [_monitored_item(self._nodes[p.key], n, p, config) for n, p in enumerate(points)]
        results: list[int | ua.StatusCode] = []
        for start in range(0, len(requests), config.max_nodes_per_read):
            results += await sub.create_monitored_items(
                requests[start : start + config.max_nodes_per_read]
            )
        refused = [
            (p, r) for p, r in zip(points, results, strict=True) if isinstance(r, ua.StatusCode)
        ]
        if refused:
            # A node the server will not monitor is reported bad and read by polling.
            now, mono = time.time(), steady()
            for point, code in refused:
                _logger.warning(
                    "device %s: point %s (%s) not monitored: %s; polling it",
                    config.name,
                    point.key,
                    point.address,
                    code.name,
                )
            self._publish([Sample.bad(self._ids[p.key], now, mono, c.name) for p, c in refused])
            self._spawn(self._poll([p.key for p, _ in refused]), "poll-refused")
        self._spawn(self._consume(sub), "data")

    async def _consume(self, sub: Subscription) -> None:
        # A queue that holds items returns them without yielding to the loop: hand the rules
        # what is there every BATCH notifications, and let other tasks run in between.
        handled = 0
        async for event in sub:
            handled += 1
            if handled % BATCH == 0:
                self._flush()
                await asyncio.sleep(0)
            if isinstance(event, DataChangeEvent):
                key = self._keys.get(event.node.nodeid)
                if key is None:
                    continue
                point = self._points[key]
                value = event.data.monitored_item.Value
                self._queue(
                    sample_of(self._ids[key], value, point.type == "bool", time.time(), steady())
                )
            elif isinstance(event, OpcEvent):
                self._on_event(event.event)
            elif isinstance(event, StatusChangeEvent):
                code = event.notification.Status
                if not code.is_good():
                    _logger.warning(
                        "device %s: subscription status %s", self._config.name, code.name
                    )
                    self._lost.set()

    async def _poll(self, keys: list[str]) -> None:
        interval = self._config.poll_interval
        next_at = steady()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - steady()))
            samples = await self._read_points(keys)
            self._publish(samples)
            if samples and all(s.reason == "not connected" for s in samples):
                return

    async def _read_points(self, keys: list[str]) -> list[Sample]:
        """Batched Read of ``keys``, ``max_nodes_per_read`` nodes per request. A failed
        request makes its points bad with the reason; a lost transport ends the session."""
        client = self._client
        now, mono = time.time(), steady()
        if client is None or not self._nodes:
            return [Sample.bad(self._ids[k], now, mono, "not connected") for k in keys]
        samples: list[Sample] = []
        step = self._config.max_nodes_per_read
        for start in range(0, len(keys), step):
            chunk = keys[start : start + step]
            try:
                values = await client.read_attributes([self._nodes[k] for k in chunk])
            except (ua.UaError, OSError, TimeoutError, ConnectionError, KeyError) as err:
                now, mono = time.time(), steady()
                reason = _describe(err)
                samples += [Sample.bad(self._ids[k], now, mono, reason) for k in chunk]
                if isinstance(err, OSError | ConnectionError | TimeoutError):
                    self._lost.set()
                continue
            now, mono = time.time(), steady()
            for key, value in zip(chunk, values, strict=True):
                binary = self._points[key].type == "bool"
                samples.append(sample_of(self._ids[key], value, binary, now, mono))
        return samples

    async def _subscribe_conditions(self, client: Client) -> None:
        """Events of AlarmConditionType from the Server object, then ConditionRefresh."""
        sub = await client.create_subscription(
            self._config.publishing_interval * 1000, queue_maxsize=QUEUE_SIZE, overflow=_OVERFLOW
        )
        types = [
            ua.NodeId(ua.Int32(ua.ObjectIds.AlarmConditionType)),
            REFRESH_START,
            REFRESH_END,
        ]
        await sub.subscribe_alarms_and_conditions(ua.ObjectIds.Server, types, queuesize=1000)
        self._refreshing = set()
        self._refreshed.clear()
        self._spawn(self._consume(sub), "events")
        server = client.nodes.server
        refresh = ua.NodeId(ua.Int32(ua.ObjectIds.ConditionType_ConditionRefresh))
        assert sub.subscription_id is not None
        try:
            await server.call_method(
                refresh, ua.Variant(sub.subscription_id, ua.VariantType.UInt32)
            )
        except ua.UaStatusCodeError as err:
            # Without ConditionRefresh the present state is unknown until the next event of
            # each condition: its point stays bad, saying so, rather than guess.
            self._refreshing = None
            reason = "condition state unknown: the server refused ConditionRefresh"
            reason += f" ({_describe(err)})"
            _logger.warning("device %s: %s", self._config.name, reason)
            now, mono = time.time(), steady()
            self._publish(
                [Sample.bad(self._ids[c.key], now, mono, reason) for c in self._config.conditions]
            )
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._refreshed.wait(), self._config.timeout)
        if self._refreshing is not None:  # the server sent no RefreshEndEvent in time
            self._end_refresh()

    def _on_event(self, event: object) -> None:
        kind = event_type(event)
        if kind == REFRESH_START:
            self._refreshing = set()
            return
        if kind == REFRESH_END:
            self._end_refresh()
            return
        state = condition_state(event)
        if state is None:
            return
        conditions = match(self._config.conditions, state)
        now, mono = time.time(), steady()
        for condition in conditions:
            self._condition_states[condition.key] = state
            if self._refreshing is not None:
                self._refreshing.add(condition.key)
            self._queue(Sample.good(self._ids[condition.key], holds(condition, state), now, mono))

    def _end_refresh(self) -> None:
        seen, self._refreshing = self._refreshing or set(), None
        now, mono = time.time(), steady()
        # Not retained by the server: inactive and acknowledged (OPC 10000-9, 4.4 Retain).
        self._publish(
            [
                Sample.good(self._ids[c.key], False, now, mono)
                for c in self._config.conditions
                if c.key not in seen
            ]
        )
        self._refreshed.set()

    def _condition_sample(self, key: str) -> Sample:
        now, mono = time.time(), steady()
        if self.state is not State.CONNECTED:
            return Sample.bad(self._ids[key], now, mono, "not connected")
        state = self._condition_states.get(key)
        held = state is not None and holds(self._conditions[key], state)
        return Sample.good(self._ids[key], held, now, mono)

    # -- publishing ---------------------------------------------------------------------

    def _queue(self, sample: Sample) -> None:
        """Collect samples of one turn of the loop and publish them as one batch."""
        self._pending.append(sample)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        if pending:
            self._publish(pending)

    def _publish(self, samples: Sequence[Sample]) -> None:
        if samples and self._publisher is not None:
            held = self._held
            for sample in samples:
                held[sample.point] = sample
            self._publisher.samples(samples)

    def _mark_bad(self, reason: str) -> None:
        """Every point and condition of the device bad: a lost server is an alarm."""
        now, mono = time.time(), steady()
        self._publish([Sample.bad(pid, now, mono, reason) for pid in self._ids.values()])


def _monitored_item(
    node: Node, n: int, point: OpcuaPoint, config: OpcuaConfig
) -> ua.MonitoredItemCreateRequest:
    """A data-change monitored item with the device's sampling interval and queue size and
    the point's absolute deadband (OPC 10000-4, 7.22.2 DataChangeFilter)."""
    params = ua.MonitoringParameters()
    params.ClientHandle = _CLIENT_HANDLE_BASE + n
    params.SamplingInterval = config.sampling_interval * 1000
    params.QueueSize = config.queue_size
    params.DiscardOldest = True
    if point.deadband:
        data_filter = ua.DataChangeFilter()
        data_filter.Trigger = ua.DataChangeTrigger.StatusValue
        data_filter.DeadbandType = ua.DeadbandType.Absolute
        data_filter.DeadbandValue = point.deadband
        params.Filter = data_filter
    item = ua.ReadValueId()
    item.NodeId = node.nodeid
    item.AttributeId = ua.AttributeIds.Value
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = item
    request.MonitoringMode = ua.MonitoringMode.Reporting
    request.RequestedParameters = params
    return request


def _typed(value: Value, point: OpcuaPoint) -> Value:
    if point.type == "bool":
        return bool(value)
    if point.type == "text":
        return str(value)
    return value


def _describe(err: BaseException) -> str:
    if isinstance(err, ua.UaStatusCodeError) and isinstance(getattr(err, "code", None), int):
        return code_name(err.code)
    text = str(err) or type(err).__name__
    return text[:200]


registry.register("opcua", OpcuaConfig, OpcuaDriver)

__all__ = ["OpcuaCondition", "OpcuaDriver", "Refused", "State"]

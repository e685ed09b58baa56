"""A fire-alarm panel as an OPC UA server (asyncua), for tests, the demo and benchmarks.

Address space, namespace ``urn:cellsafe:fire-panel`` (index 2 on a fresh server)::

    Objects/FirePanel                      ns=2;s=FirePanel
        Trouble      Boolean               ns=2;s=FirePanel.Trouble   any zone in fault, or forced
        Silence      Boolean, writable     ns=2;s=FirePanel.Silence   sounders silenced
        Reset()      method                ns=2;s=FirePanel.Reset     clears latched fires
        <zone>                             ns=2;s=<zone>
            State    Int32                 ns=2;s=<zone>.State        0 normal, 1 pre-alarm,
                                                                      2 fire, 3 fault, 4 disabled
            Fire     Boolean               ns=2;s=<zone>.Fire
            Smoke    Double, %obs/m        ns=2;s=<zone>.Smoke
            Text     String                ns=2;s=<zone>.Text

Alarms & Conditions (OPC 10000-9): per zone the conditions ``Fire`` (Severity 900),
``PreAlarm`` (500) and ``Fault`` (300), events of AlarmConditionType emitted through the
Server object with SourceName ``<zone>``, the ConditionId ``ns=2;s=<zone>.Conditions.<name>``,
ActiveState, AckedState, Retain and a Message. ConditionRefresh and Acknowledge work.

Driven by the warehouse physics: each zone may watch a warehouse zone's smoke detectors;
smoke above ``pre_alarm`` %obs/m is a pre-alarm, above ``fire`` a fire, which latches
until the panel is reset, as panels do (EN 54-2, 7.1). Tests and scenario steps force
states with ``force``; ``extra_points`` adds plain Double variables for the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from asyncua import Node, Server, ua
from asyncua.crypto import uacrypto
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.event_generator import EventGenerator
from cryptography.hazmat.primitives.serialization import Encoding

from simulators.warehouse import Warehouse

_logger = logging.getLogger(__name__)

T = TypeVar("T")

NAMESPACE = "urn:cellsafe:fire-panel"
APPLICATION_URI = "urn:cellsafe:fire-panel-simulator"


def _sid(name: str, ns: int) -> ua.NodeId:
    return ua.NodeId(ua.String(name), ua.Int16(ns))


def _std(identifier: int) -> ua.NodeId:
    return ua.NodeId(ua.Int32(identifier))


def _status(code: int) -> ua.StatusCode:
    return ua.StatusCode(ua.UInt32(code))


class ZoneState(enum.IntEnum):
    NORMAL = 0
    PRE_ALARM = 1
    FIRE = 2
    FAULT = 3
    DISABLED = 4


# Condition name -> (the zone state that makes it active, Severity 1-1000).
CONDITIONS: dict[str, tuple[ZoneState, int]] = {
    "Fire": (ZoneState.FIRE, 900),
    "PreAlarm": (ZoneState.PRE_ALARM, 500),
    "Fault": (ZoneState.FAULT, 300),
}


@dataclass(slots=True, kw_only=True)
class Security:
    """The server's endpoints: ``policies`` of asyncua's ``SecurityPolicyType`` and, for
    anything but NoSecurity, the server's certificate and key; ``users`` name -> password
    makes user login the only way in (no anonymous sessions)."""

    policies: list[ua.SecurityPolicyType] = field(
        default_factory=lambda: [ua.SecurityPolicyType.NoSecurity]
    )
    certificate: Path | None = None
    private_key: Path | None = None
    users: dict[str, str] | None = None
    user_certificates: list[Path] = field(default_factory=list)


class _Users:
    """asyncua user manager: only the configured names, with their passwords, and the
    holders of the configured user certificates (compared as DER)."""

    def __init__(self, users: Mapping[str, str], certificates: Sequence[bytes] = ()) -> None:
        self._users = dict(users)
        self._certificates = set(certificates)

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is not None and self._users.get(username) == password:
            return User(role=UserRole.Admin, name=username)
        if certificate is not None and certificate in self._certificates:
            return User(role=UserRole.Admin, name="certificate")
        return None


@dataclass(slots=True)
class _Condition:
    zone: str
    name: str
    node: Node
    generator: EventGenerator
    active: bool = False
    acked: bool = True


@dataclass(slots=True)
class _Zone:
    name: str
    watches: str | None
    state: ZoneState = ZoneState.NORMAL
    forced: ZoneState | None = None
    latched: bool = False
    smoke: float = 0.0
    shown_smoke: float = 0.0
    nodes: dict[str, Node] = field(default_factory=dict)


class FirePanelServer:
    """The panel on ``opc.tcp://host:port``; ``zones`` maps a panel zone to the warehouse
    zone whose detectors it watches (or ``None``)."""

    def __init__(
        self,
        zones: Mapping[str, str | None],
        host: str = "127.0.0.1",
        port: int = 4840,
        *,
        warehouse: Warehouse | None = None,
        security: Security | None = None,
        pre_alarm: float = 0.5,
        fire: float = 2.0,
        extra_points: int = 0,
        condition_refresh: bool = True,
    ) -> None:
        self.host, self.port = host, port
        self.warehouse = warehouse
        self.security = security or Security()
        self.pre_alarm, self.fire = pre_alarm, fire
        self.extra_points = extra_points
        self.condition_refresh = condition_refresh  # False: a server without ConditionRefresh
        self._zones = {name: _Zone(name, watches) for name, watches in zones.items()}
        self._conditions: dict[str, _Condition] = {}
        self._server: Server | None = None
        self._ns = 2
        self._trouble_forced = False
        self.trouble: Node | None = None
        self.silence: Node | None = None
        self.extra: list[Node] = []
        self.resets = 0
        self.acks: list[tuple[str, str]] = []  # (condition id, comment) as acknowledged

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}"

    @property
    def server(self) -> Server:
        assert self._server is not None, "the panel is not started"
        return self._server

    def node_id(self, name: str) -> str:
        """``"Zone1.State"`` -> ``"ns=2;s=Zone1.State"``."""
        return f"ns={self._ns};s={name}"

    async def start(self) -> None:
        security = self.security
        certificates = [
            (await uacrypto.load_certificate(str(path))).public_bytes(Encoding.DER)
            for path in security.user_certificates
        ]
        users = (
            _Users(security.users or {}, certificates)
            if security.users is not None or certificates
            else None
        )
        server = Server(user_manager=users)  # type: ignore[arg-type]
        server.iserver.bind_condition_methods = self.condition_refresh
        await server.init()
        server.set_endpoint(f"opc.tcp://{self.host}:{self.port}/")
        server.set_server_name("CellSafe fire-panel simulator")
        await server.set_application_uri(APPLICATION_URI)
        server.set_security_policy(security.policies)
        if security.certificate is not None and security.private_key is not None:
            await server.load_certificate(str(security.certificate))
            await server.load_private_key(str(security.private_key))
        tokens: list[type] = [ua.UserNameIdentityToken] if security.users is not None else []
        tokens += [ua.X509IdentityToken] if certificates else []
        if tokens:
            server.set_identity_tokens(tokens)
        self._server = server
        self._ns = await server.register_namespace(NAMESPACE)
        await self._build(server)
        await server.start()
        self._ticker = asyncio.create_task(self._physics(), name="fire-panel-physics")

    async def stop(self) -> None:
        ticker = getattr(self, "_ticker", None)
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def __aenter__(self) -> FirePanelServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _build(self, server: Server) -> None:
        ns = self._ns
        objects = server.nodes.objects
        panel = await objects.add_object(_sid("FirePanel", ns), ua.QualifiedName("FirePanel", ns))
        self.trouble = await panel.add_variable(
            _sid("FirePanel.Trouble", ns), ua.QualifiedName("Trouble", ns), False
        )
        self.silence = await panel.add_variable(
            _sid("FirePanel.Silence", ns), ua.QualifiedName("Silence", ns), False
        )
        await self.silence.set_writable()
        await panel.add_method(
            _sid("FirePanel.Reset", ns), ua.QualifiedName("Reset", ns), self._reset, [], []
        )
        for zone in self._zones.values():
            # A restarted panel starts blank and announces every state anew.
            zone.state, zone.shown_smoke = ZoneState.NORMAL, 0.0
            obj = await panel.add_object(_sid(zone.name, ns), ua.QualifiedName(zone.name, ns))
            initial: dict[str, ua.Variant] = {
                "State": ua.Variant(0, ua.VariantType.Int32),
                "Fire": ua.Variant(False, ua.VariantType.Boolean),
                "Smoke": ua.Variant(0.0, ua.VariantType.Double),
                "Text": ua.Variant("normal", ua.VariantType.String),
            }
            for key, variant in initial.items():
                zone.nodes[key] = await obj.add_variable(
                    _sid(f"{zone.name}.{key}", ns), ua.QualifiedName(key, ns), variant
                )
            for name, (_, severity) in CONDITIONS.items():
                node = await obj.add_object(
                    _sid(f"{zone.name}.Conditions.{name}", ns), ua.QualifiedName(name, ns)
                )
                generator = await server.get_event_generator(ua.ObjectIds.AlarmConditionType)
                event = generator.event
                event.SourceNode = obj.nodeid
                event.SourceName = zone.name
                event.NodeId = node.nodeid  # the ConditionId
                event.ConditionName = name
                event.Severity = severity
                setattr(event, "ActiveState/Id", False)
                setattr(event, "AckedState/Id", True)
                event.Retain = False
                self._conditions[node.nodeid.to_string()] = _Condition(
                    zone.name, name, node, generator
                )
        server.iserver.isession.add_method_callback(
            _std(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge), self._acknowledge
        )
        if self.extra_points:
            bench = await objects.add_object(_sid("Bench", ns), ua.QualifiedName("Bench", ns))
            for n in range(self.extra_points):
                self.extra.append(
                    await bench.add_variable(
                        _sid(f"Bench.{n}", ns),
                        ua.QualifiedName(f"P{n}", ns),
                        ua.Variant(0.0, ua.VariantType.Double),
                    )
                )

    # -- what tests and scenarios do ---------------------------------------------------

    async def force(self, zone: str, state: ZoneState | str | None) -> None:
        """Hold ``zone`` in ``state`` (``"fire"``, ``"pre-alarm"``, ...); ``None`` lets the
        physics decide again."""
        if isinstance(state, str):
            state = ZoneState[state.upper().replace("-", "_")]
        self._zones[zone].forced = state
        if self._server is not None:
            await self._update()

    async def set_trouble(self, flag: bool) -> None:
        self._trouble_forced = flag
        if self._server is not None:
            await self._update()

    async def write(self, node_id: str, value: Any, code: int = ua.StatusCodes.Good) -> None:
        """Set a variable as the panel would, with a status code (a failed sensor:
        ``BadSensorFailure``)."""
        node = self.server.get_node(node_id)
        variant_type = await node.read_data_type_as_variant_type()
        data = ua.DataValue(ua.Variant(value, variant_type), StatusCode=_status(code))
        await node.write_value(data)

    def condition(self, zone: str, name: str) -> tuple[bool, bool]:
        """``(active, acked)`` of a zone's condition."""
        cond = self._conditions[self.node_id(f"{zone}.Conditions.{name}")]
        return cond.active, cond.acked

    # -- the panel's own logic ----------------------------------------------------------

    async def _physics(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            try:
                await self._update()
            except Exception:  # a simulator hiccup must not end the panel
                _logger.exception("fire panel update failed")

    async def _update(self) -> None:
        for zone in self._zones.values():
            if self.warehouse is not None and zone.watches is not None:
                wz = self.warehouse.zone(zone.watches)
                zone.smoke = max(wz.detector(i) for i in (1, 2, 3))
            state = self._decide(zone)
            if state != zone.state:
                zone.state = state
                await self._publish_zone(zone)
            if zone.smoke != zone.shown_smoke:
                zone.shown_smoke = zone.smoke
                smoke = ua.Variant(zone.smoke, ua.VariantType.Double)
                await zone.nodes["Smoke"].write_value(smoke)
        trouble = self._trouble_forced or any(
            z.state is ZoneState.FAULT for z in self._zones.values()
        )
        assert self.trouble is not None
        if await self.trouble.read_value() != trouble:
            await self.trouble.write_value(trouble)

    def _decide(self, zone: _Zone) -> ZoneState:
        forced = zone.forced
        if forced is None and self.warehouse is not None and zone.watches is not None:
            held = self.warehouse.zone(zone.watches).panel_state
            forced = None if held is None else ZoneState[held.upper().replace("-", "_")]
        state, zone.latched = decide(zone.smoke, zone.latched, forced, self.pre_alarm, self.fire)
        return state

    async def _publish_zone(self, zone: _Zone) -> None:
        nodes = zone.nodes
        await nodes["State"].write_value(ua.Variant(int(zone.state), ua.VariantType.Int32))
        await nodes["Fire"].write_value(zone.state is ZoneState.FIRE)
        text = zone.state.name.lower().replace("_", "-")
        await nodes["Text"].write_value(ua.Variant(text, ua.VariantType.String))
        for name, (when, _) in CONDITIONS.items():
            cond = self._conditions[self.node_id(f"{zone.name}.Conditions.{name}")]
            active = zone.state is when
            if active != cond.active:
                cond.active = active
                if active:
                    cond.acked = False
                await self._emit(cond, f"{zone.name} {name} {'active' if active else 'normal'}")

    async def _emit(self, cond: _Condition, message: str) -> None:
        event = cond.generator.event
        setattr(event, "ActiveState/Id", cond.active)
        event.ActiveState = ua.LocalizedText("Active" if cond.active else "Inactive")
        setattr(event, "AckedState/Id", cond.acked)
        event.AckedState = ua.LocalizedText("Acknowledged" if cond.acked else "Unacknowledged")
        event.Retain = cond.active or not cond.acked
        await cond.generator.trigger(message=message)

    async def reset(self) -> None:
        """The panel's reset button: latched fires clear where the smoke has gone."""
        await self._reset(ua.NodeId(ua.Int32(0)))

    async def _reset(self, parent: ua.NodeId) -> list[ua.Variant]:
        self.resets += 1
        for zone in self._zones.values():
            zone.latched = False
            if zone.forced is ZoneState.FIRE:
                zone.forced = None
        await self._update()
        return []

    async def _acknowledge(self, parent: ua.NodeId, event_id: Any, comment: Any) -> ua.StatusCode:
        cond = self._conditions.get(parent.to_string())
        if cond is None:
            return _status(ua.StatusCodes.BadNodeIdUnknown)
        wanted = cond.generator.event.EventId
        given = event_id.Value if isinstance(event_id, ua.Variant) else event_id
        wanted = wanted.Value if isinstance(wanted, ua.Variant) else wanted
        if given != wanted:
            return _status(ua.StatusCodes.BadEventIdUnknown)
        if cond.acked:
            return _status(ua.StatusCodes.BadConditionBranchAlreadyAcked)
        text = comment.Value if isinstance(comment, ua.Variant) else comment
        self.acks.append((parent.to_string(), getattr(text, "Text", None) or str(text)))
        cond.acked = True
        await self._emit(cond, f"{cond.zone} {cond.name} acknowledged")
        return _status(ua.StatusCodes.Good)


def decide(
    smoke: float, latched: bool, forced: ZoneState | None, pre_alarm: float, fire: float
) -> tuple[ZoneState, bool]:
    """A zone's state and whether its fire is latched, from its detectors' highest reading
    (``smoke``, %obs/m) and the thresholds: smoke -> pre-alarm -> fire, and a fire stays
    until the panel is reset. A forced state wins (a fault, a zone disabled for works)."""
    if forced is not None:
        return forced, latched
    latched = latched or smoke >= fire
    if latched:
        return ZoneState.FIRE, True
    if smoke >= pre_alarm:
        return ZoneState.PRE_ALARM, False
    return ZoneState.NORMAL, False


class FirePanelThread:
    """A started ``FirePanelServer`` serving from a thread of its own, on its own event loop:
    for tests (one ~1.1 s start serves a whole session) and the demo. ``call`` runs a
    coroutine of the panel's there and returns its result; ``close`` stops everything."""

    def __init__(self, panel: FirePanelServer) -> None:
        self.panel = panel
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fire-panel", daemon=True
        )
        self._thread.start()
        try:
            self.call(lambda p: p.start())
        except BaseException:
            self._end_loop()
            raise

    @property
    def endpoint(self) -> str:
        return self.panel.endpoint

    def call(self, action: Callable[[FirePanelServer], Awaitable[T]]) -> T:
        async def run() -> T:
            return await action(self.panel)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    async def acall(self, action: Callable[[FirePanelServer], Awaitable[T]]) -> T:
        """``call`` from inside another event loop, without blocking it."""
        return await asyncio.to_thread(self.call, action)

    def close(self) -> None:
        try:
            self.call(lambda p: p.stop())
        finally:
            self._end_loop()

    def __enter__(self) -> FirePanelThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _end_loop(self) -> None:
        async def leftovers() -> None:
            # asyncua's server leaves session tasks behind on stop: end them here.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(leftovers(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

"""The one-screen summary ``cellsafe check-config`` prints for a valid file."""

from __future__ import annotations

from pathlib import Path

from drivers import registry
from gateway.config.settings import GatewaySettings


def summarise(settings: GatewaySettings, path: Path) -> str:
    s = settings
    lines = [
        f"{path.name}: OK",
        f"gateway  site={s.gateway.site} id={s.gateway.id} data_dir={s.gateway.data_dir}",
        f"mqtt     {s.mqtt.host}:{s.mqtt.port} client_id={s.mqtt_client_id} "
        f"user={s.mqtt.username or '-'} password={'set' if s.mqtt.password else 'not set'}",
        f"devices  {len(s.devices)}",
    ]
    for d in s.devices:
        points = d.point_infos()
        when = "pushes" if registry.is_push(d.driver) else f"every {d.poll_interval:g} s"
        lines.append(
            f"  {d.name:<20} {d.driver:<12} {when}, "
            f"{_count(len(points), 'point')}: {', '.join(p.key for p in points)}"
        )
    lines.append(f"zones    {len(s.zones)}")
    for z in s.zones:
        watched = []
        for spec in z.threshold_specs({}):
            parts = [f"{lvl}={lim.limit:g}" for lvl, lim in spec.limits.items()]
            if spec.rate_of_rise is not None:
                parts.append(f"rise>={spec.rate_of_rise.per_minute:g}/min")
            watched.append(f"{spec.key}({', '.join(parts)})")
        watched += [f"{i.name}(input {i.point})" for i in z.inputs]
        lines.append(f"  {z.name:<20} {z.hazard_class:<12} {'; '.join(watched) or 'nothing'}")
    lines.append(f"relays   {len(s.relays)}")
    for r in s.relays:
        lines.append(
            f"  {r.name:<20} {r.device}.{r.point}, resting "
            f"{'on' if r.resting else 'off'}, read-back within {r.verify_timeout:g} s"
        )
    rows = s.matrix_rows()
    lines.append(f"matrix   {len(rows)} rows")
    for row in rows:
        effects = ", ".join(
            f"{e.relay} {'on' if e.state else 'off'}"
            + (f" after {e.delay:g} s" if e.delay else "")
            + (" latched" if e.latch else "")
            for e in row.effects
        )
        lines.append(f"  {row.name:<20} {row.vote}oo{{{' | '.join(row.causes)}}} -> {effects}")
    for lock in s.interlocks:
        lines.append(
            f"  interlock {lock.relay}: inhibit {', '.join(lock.inhibit) or '-'}, "
            f"permit {', '.join(f'{p.relay} {p.state}' for p in lock.permit) or '-'}"
        )
    for dog in s.watchdogs:
        lines.append(
            f"watchdog {dog.device}.{dog.heartbeat} every {dog.interval:g} s, "
            f"module timeout {dog.timeout:g} s"
        )
    if s.notify.enabled:
        n = s.notify
        lines.append(
            f"notify   {len(n.routes)} routes, {len(n.people)} people, {len(n.shifts)} shifts,"
            f" times in {n.timezone}; channels (secrets set): {', '.join(n.channels)}"
        )
    lines += _services(s)
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _services(s: GatewaySettings) -> list[str]:
    """One line for each optional service the file switches on, so a reader sees at once
    whether the console, the metrics, the event file and the time series will run."""
    lines = []
    if s.console.listen is not None:
        scheme = "https" if s.console.tls is not None else "http"
        lines.append(f"console  {scheme}://{s.console.listen}/ accounts in {s.console.users_file}")
    if s.metrics.listen is not None:
        lines.append(f"metrics  http://{s.metrics.listen}/metrics, /health/live, /health/ready")
    if s.event_file.path is not None:
        lines.append(
            f"events   every event to {s.event_file.path}"
            + (" with telemetry" if s.event_file.telemetry else "")
        )
    if s.timeseries.url is not None:
        every = (
            f"telemetry every {s.telemetry.interval:g} s"
            if s.telemetry.interval
            else "no samples: [telemetry] interval is 0"
        )
        token = "set" if s.timeseries.token else "not set"
        lines.append(f"series   {s.timeseries.url} ({every}), token {token}")
    if s.stock.master_file is not None:
        lines.append(
            f"stock    master {s.stock.master_file} (a newer one from the WMS replaces it)"
        )
    return lines

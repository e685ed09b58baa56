"""The one-screen summary ``cellsafe check-config`` prints for a valid file."""

from __future__ import annotations

from pathlib import Path

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
        lines.append(
            f"  {d.name:<20} {d.driver:<12} every {d.poll_interval:g} s, "
            f"{len(points)} points: {', '.join(p.key for p in points)}"
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
    lines.append(f"effects  {len(s.effects)}")
    for e in s.effects:
        lines.append(f"  {' | '.join(e.when)} -> {e.relay} {'on' if e.state else 'off'}")
    return "\n".join(lines)

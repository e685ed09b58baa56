"""What the pages show, built from the gateway's status and the recent samples.

``snapshot()`` is the one JSON shape behind the overview, alarm, relay, matrix and device
pages (``GET /api/state`` and the ``state`` message of the live stream): zones as tiles
(each quantity's latest value and the worst alarm of the zone), the alarms that are not
normal (ISA-18.2 states), relays with their overrides, the matrix rows and device health.
Times are Unix seconds as stamped by the samples; an override's remaining time is
computed on the steady clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.config.settings import GatewaySettings
from gateway.console.trends import Trends
from gateway.core.status import GatewayStatus
from vocab.clock import steady
from vocab.ids import point_id

RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
HIGH = frozenset({"high", "critical"})
# ISA-18.2 states in which an alarm is annunciated (not shelved, suppressed or out of service)
ANNUNCIATED = frozenset({"unack", "acked", "rtn_unack", "latched"})
# Tiles show four kinds of reading; the rest of the quantities fall under one of them.
TILE_KIND = {
    "temperature": "temperature",
    "humidity": "humidity",
    "dew_point": "humidity",
    "h2": "gas",
    "co": "gas",
    "hf": "gas",
    "voc": "gas",
    "smoke": "smoke",
}


class View:
    def __init__(
        self,
        settings: GatewaySettings,
        status: Callable[[], GatewayStatus],
        trends: Trends,
    ) -> None:
        self._settings = settings
        self._status = status
        self._trends = trends
        self.units = {
            point_id(d.name, p.key): p.unit for d in settings.devices for p in d.point_infos()
        }
        self.device_points = {
            d.name: [point_id(d.name, p.key) for p in d.point_infos()] for d in settings.devices
        }

    def zones(self, status: GatewayStatus, latest: dict[str, dict[str, Any]]) -> list[Any]:
        tiles = []
        for zone in self._settings.zones:
            readings = []
            for threshold in zone.thresholds:
                kind = TILE_KIND.get(threshold.quantity or "", "")
                if not kind:
                    continue
                now = latest.get(threshold.point, {})
                readings.append(
                    {
                        "kind": kind,
                        "name": threshold.key,
                        "point": threshold.point,
                        "value": now.get("value"),
                        "quality": now.get("quality", "bad"),
                        "unit": self.units.get(threshold.point),
                    }
                )
            mine = [a for a in status["alarms"] if a["id"].startswith(zone.name + ".")]
            active = [a for a in mine if a["condition"] or a["state"] == "latched"]
            worst = max(active, key=lambda a: RANK.get(a["priority"], 0), default=None)
            tiles.append(
                {
                    "name": zone.name,
                    "description": zone.description,
                    "readings": readings,
                    "worst": worst["priority"] if worst else None,
                    "unacked": any(a["state"] in ("unack", "rtn_unack") for a in mine),
                    "alarms": [a["id"] for a in mine],
                }
            )
        return tiles

    def relays(self, status: GatewayStatus) -> list[dict[str, Any]]:
        overrides = status["safety"].get("overrides", {})
        now = steady()
        out = []
        for spec in self._settings.relays:
            relay = status["relays"].get(spec.name)
            override = overrides.get(spec.name)
            out.append(
                {
                    "name": spec.name,
                    "state": relay["state"] if relay else "unknown",
                    "faulted": relay["faulted"] if relay else False,
                    "resting": "on" if spec.resting else "off",
                    "override": None
                    if override is None
                    else {
                        "state": override["state"],
                        "remaining": max(0.0, round(float(override["until"]) - now, 1)),
                        "by": override["by"],
                    },
                }
            )
        return out

    def health(
        self, status: GatewayStatus, latest: dict[str, dict[str, Any]]
    ) -> list[dict[str, Any]]:
        out = []
        for device, points in self.device_points.items():
            poller = status["pollers"].get(device)
            out.append(
                {
                    "device": device,
                    "polls": poller["polls"] if poller else 0,
                    "failures": poller["failures"] if poller else 0,
                    "bad_polls": poller["bad_polls"] if poller else 0,
                    "latency_ms": round(poller["last_duration"] * 1000, 1) if poller else None,
                    "points": [
                        {
                            "point": p,
                            "unit": self.units.get(p),
                            **latest.get(
                                p,
                                {"value": None, "quality": "bad", "reason": "no sample yet"},
                            ),
                        }
                        for p in points
                    ],
                }
            )
        return out

    def high_active(self) -> int:
        """How many high or critical alarms are annunciated (the sign-in page's count)."""
        return sum(
            1
            for a in self._status()["alarms"]
            if a["priority"] in HIGH and a["state"] in ANNUNCIATED
        )

    def snapshot(self) -> dict[str, Any]:
        status = self._status()
        latest = self._trends.latest()
        rows = status["safety"].get("rows", {})
        return {
            "site": self._settings.gateway.site,
            "gateway": self._settings.gateway.id,
            "zones": self.zones(status, latest),
            "alarms": status["alarms"],
            "flooding": status["flooding"],
            "relays": self.relays(status),
            "matrix": [{"name": name, **row} for name, row in rows.items()],
            "blocked": status["safety"].get("blocked", {}),
            "health": self.health(status, latest),
            "uplink": status["uplink"],
            "backlog": status["outbox"],
            "last_seq": status["last_seq"],
        }

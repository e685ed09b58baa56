"""The local operator console: a small web application served by the gateway itself.

For the day the WMS is down: zones, alarms (acknowledge, shelve), relays (overrides),
the cause-and-effect matrix, the event log, device health and trends, live in a browser,
in English or Chinese. See docs/console.md; the JSON API is at ``/api/openapi.json``.
"""

from __future__ import annotations

from gateway.console.app import Console

__all__ = ["Console"]

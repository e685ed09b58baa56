"""Config tables for the safety outputs that have no runtime type of their own.

The options of ``[[matrix]]``, ``[[interlocks]]``, ``[[relays]]`` and ``[[watchdogs]]``
are declared once, on the runtime types in ``rules/matrix.py``, ``actuators/relay.py``
and ``actuators/watchdog.py``: a table is read straight into its spec.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SafetySection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_override: float = Field(
        8 * 3600.0, gt=0, description="seconds: the longest manual override"
    )

"""Outputs the gateway drives itself: relays first."""

from actuators.relay import Relay, RelaySpec

__all__ = ["Relay", "RelaySpec"]

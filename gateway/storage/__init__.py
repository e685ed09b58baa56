"""Durable state on the gateway's own disk."""

from gateway.storage.outbox import Outbox, StoredEvent

__all__ = ["Outbox", "StoredEvent"]

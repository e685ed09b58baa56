"""Durable state on the gateway's own disk: the event log with its sink cursors."""

from gateway.storage.log import Cursor, EventLog, StoredRecord

__all__ = ["Cursor", "EventLog", "StoredRecord"]

"""Signed requests already seen: a nonce or an id is good for one use within its window.

Kept in a small SQLite file of its own in the data directory (``commands-seen.sqlite3``),
written and synced before the command runs, so a request captured on the wire is refused
again after a gateway restart too. An entry is kept until its request would be refused as
expired anyway (``iat + window + skew``), then pruned.

Both the expiry and the pruning use the wall clock, because ``iat`` is a timestamp made
by another machine. A gateway clock stepped back by more than the window could make an
old request fresh again after its entry was pruned; keep the gateway on NTP.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from types import TracebackType

FILE_NAME = "commands-seen.sqlite3"


class SeenRequests:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen ("
            " kind TEXT NOT NULL, key TEXT NOT NULL, until REAL NOT NULL,"
            " PRIMARY KEY (kind, key))"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS seen_until ON seen (until)")

    def __enter__(self) -> SeenRequests:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def first_use(
        self, principal: str, request_id: str, nonce: str, until: float, now: float
    ) -> str | None:
        """Record the request and return None, or say why it was seen before.

        An id is unique per principal, a nonce across all of them.
        """
        keys = (("nonce", nonce), ("id", f"{principal}\x00{request_id}"))
        with self._db:  # one transaction: prune, check, record
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM seen WHERE until < ?", (now,))
            for kind, key in keys:
                row = self._db.execute(
                    "SELECT 1 FROM seen WHERE kind = ? AND key = ?", (kind, key)
                ).fetchone()
                if row is not None:
                    return f"replayed: this {kind} was already used within the window"
            self._db.executemany(
                "INSERT INTO seen (kind, key, until) VALUES (?, ?, ?)",
                [(kind, key, until) for kind, key in keys],
            )
        return None

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM seen").fetchone()
        return int(count)

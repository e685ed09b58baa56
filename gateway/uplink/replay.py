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
    """Opened lazily: a data directory that refuses writes refuses signed commands (each
    with the reason), and is tried again with the next one, but stops nothing else."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS seen ("
                " kind TEXT NOT NULL, key TEXT NOT NULL, until REAL NOT NULL,"
                " PRIMARY KEY (kind, key))"
            )
            db.execute("CREATE INDEX IF NOT EXISTS seen_until ON seen (until)")
        except sqlite3.Error:
            db.close()
            raise
        self._db = db
        return db

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
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def first_use(
        self, principal: str, request_id: str, nonce: str, until: float, now: float
    ) -> str | None:
        """Record the request and return None, or say why it was seen before.

        An id is unique per principal, a nonce across all of them. Raises
        ``sqlite3.Error`` or ``OSError`` when it cannot remember: then do not run it.
        """
        keys = (("nonce", nonce), ("id", f"{principal}\x00{request_id}"))
        db = self._open()
        with db:  # one transaction: prune, check, record
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM seen WHERE until < ?", (now,))
            for kind, key in keys:
                row = db.execute(
                    "SELECT 1 FROM seen WHERE kind = ? AND key = ?", (kind, key)
                ).fetchone()
                if row is not None:
                    return f"replayed: this {kind} was already used within the window"
            db.executemany(
                "INSERT INTO seen (kind, key, until) VALUES (?, ?, ?)",
                [(kind, key, until) for kind, key in keys],
            )
        return None

    def __len__(self) -> int:
        (count,) = self._open().execute("SELECT COUNT(*) FROM seen").fetchone()
        return int(count)

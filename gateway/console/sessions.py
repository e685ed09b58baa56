"""Signed-in sessions: an opaque cookie token, a CSRF token, idle and absolute expiry.

Both limits are measured on the steady clock (``vocab.clock.steady``): a step of the wall
clock neither ends a session early nor keeps one alive. Sessions live in memory only: a
restart of the gateway signs everybody out. The number of sessions is capped; the least
recently used one goes first when a new sign-in would pass the cap.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from gateway.console.auth import User

MAX_SESSIONS = 256


@dataclass(slots=True)
class Session:
    token: str
    user: User
    started: float  # steady seconds
    seen: float  # steady seconds of the last request
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    lang: str = ""  # chosen in the console; wins over the account's and the browser's


class Sessions:
    """``idle``: seconds without a request; ``lifetime``: seconds since sign-in."""

    def __init__(self, idle: float, lifetime: float, cap: int = MAX_SESSIONS) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self._cap = cap
        self._by_token: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._by_token)

    def start(self, user: User, now: float) -> Session:
        self.purge(now)
        while len(self._by_token) >= self._cap:
            oldest = min(self._by_token.values(), key=_seen)
            del self._by_token[oldest.token]
        session = Session(secrets.token_urlsafe(32), user, now, now, lang=user.lang)
        self._by_token[session.token] = session
        return session

    def get(self, token: str | None, now: float, touch: bool = True) -> Session | None:
        """The live session of ``token``; an expired one is ended and None returned."""
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None:
            return None
        if self.expired(session, now):
            del self._by_token[token]
            return None
        if touch:
            session.seen = now
        return session

    def expired(self, session: Session, now: float) -> bool:
        return now - session.seen > self.idle or now - session.started > self.lifetime

    def end(self, token: str) -> None:
        self._by_token.pop(token, None)

    def purge(self, now: float) -> None:
        for token in [t for t, s in self._by_token.items() if self.expired(s, now)]:
            del self._by_token[token]


def _seen(session: Session) -> float:
    return session.seen

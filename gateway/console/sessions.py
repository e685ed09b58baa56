"""Signed-in sessions: an opaque cookie token, a CSRF token, idle and absolute expiry.

Two clocks of idleness, both on the steady clock (``vocab.clock.steady``, injectable as
``clock`` for tests): a step of the wall clock neither ends a session early nor keeps one
alive.

- **Viewing** (``seen``): any request of the session, and every heartbeat of an open live
  stream (``sse.py``, every 10 s), keeps it. A page left open on a wall display or a
  tablet therefore keeps showing alarms until ``lifetime`` after sign-in; a session with
  no request and no open page for ``idle`` seconds ends.
- **Acting** (``acted``): set at sign-in, at a password confirmation (``confirm``) and by
  user interaction while the window is still open (``interacted``: an action, a gesture
  reported by the page). An action more than ``idle`` seconds after the last interaction
  is refused (``may_act`` false) until the account's password is given again: the person
  at the screen may no longer be the one who signed in, so nothing is done, or audited, in
  that name. Once the window has lapsed, interaction alone does not reopen it.

Sessions live in memory only: a restart of the gateway signs everybody out. Their number
is capped twice: at most ``per_account`` sessions per account (a new sign-in ends that
account's own least recently seen session) and ``cap`` in all (a new sign-in ends the
least recently seen session of the account that holds the most), so that no account,
however often it signs in, pushes other accounts' sessions out.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.console.auth import User
from vocab.clock import steady

MAX_SESSIONS = 256
PER_ACCOUNT = 8


@dataclass(slots=True)
class Session:
    token: str
    user: User
    started: float  # steady seconds
    seen: float  # steady seconds of the last request or stream heartbeat (viewing)
    acted: float  # steady seconds of the last interaction or password (acting)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    lang: str = ""  # chosen in the console; wins over the account's and the browser's


class Sessions:
    """``idle``: seconds without a request or open stream (viewing) and without interaction
    (acting); ``lifetime``: seconds since sign-in; ``clock``: steady seconds."""

    def __init__(
        self,
        idle: float,
        lifetime: float,
        cap: int = MAX_SESSIONS,
        per_account: int = PER_ACCOUNT,
        clock: Callable[[], float] = steady,
    ) -> None:
        if cap < 1 or per_account < 1:
            raise ValueError("cap and per_account are at least 1")
        self.idle = idle
        self.lifetime = lifetime
        self.clock = clock
        self._cap = cap
        self._per_account = per_account
        self._by_token: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._by_token)

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    def start(self, user: User, now: float | None = None) -> Session:
        """A new session of ``user``; ends older ones first if a cap would be passed."""
        now = self._now(now)
        self.purge(now)
        while True:
            mine = [s for s in self._by_token.values() if s.user.name == user.name]
            if len(mine) < self._per_account:
                break
            del self._by_token[min(mine, key=_seen).token]
        while len(self._by_token) >= self._cap:
            counts = Counter(s.user.name for s in self._by_token.values())
            most = max(counts.values())
            crowd = [s for s in self._by_token.values() if counts[s.user.name] == most]
            del self._by_token[min(crowd, key=_seen).token]
        session = Session(secrets.token_urlsafe(32), user, now, now, now, lang=user.lang)
        self._by_token[session.token] = session
        return session

    def get(
        self, token: str | None, now: float | None = None, touch: bool = True
    ) -> Session | None:
        """The live session of ``token``; an expired one is ended and None returned.
        ``touch`` counts this as viewing (it never counts as interaction)."""
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None:
            return None
        now = self._now(now)
        if self.expired(session, now):
            del self._by_token[token]
            return None
        if touch:
            session.seen = now
        return session

    def expired(self, session: Session, now: float) -> bool:
        return now - session.seen > self.idle or now - session.started > self.lifetime

    def may_act(self, session: Session, now: float | None = None) -> bool:
        """Whether an action needs no password: interaction within ``idle`` seconds."""
        now = self._now(now)
        return now - session.acted <= self.idle and not self.expired(session, now)

    def act_for(self, session: Session, now: float | None = None) -> float:
        """Seconds left before an action needs the password again (0: it does now)."""
        now = self._now(now)
        if self.expired(session, now):
            return 0.0
        left = min(session.acted + self.idle, session.started + self.lifetime) - now
        return max(0.0, round(left, 1))

    def interacted(self, session: Session, now: float | None = None) -> bool:
        """Counts user interaction; False (and nothing changed) once the window lapsed."""
        now = self._now(now)
        if not self.may_act(session, now):
            return False
        session.acted = session.seen = now
        return True

    def confirm(self, session: Session, now: float | None = None) -> None:
        """The account's password was given again: the acting window opens anew."""
        now = self._now(now)
        session.acted = session.seen = now

    def end(self, token: str) -> None:
        self._by_token.pop(token, None)

    def purge(self, now: float | None = None) -> None:
        now = self._now(now)
        for token in [t for t, s in self._by_token.items() if self.expired(s, now)]:
            del self._by_token[token]


def _seen(session: Session) -> float:
    return session.seen

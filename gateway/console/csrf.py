"""CSRF protection for the console's actions (OWASP's synchroniser token pattern).

Every POST but the sign-in carries the session's own token in the ``X-CSRF-Token`` header
(a header, so a cross-site form cannot send it), compared in constant time; a request
whose ``Origin`` names another site is refused as well. The session cookie is also
``SameSite=Strict``: three locks, any one of which stops a forged request.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

HEADER = "X-CSRF-Token"


def refusal(expected: str, headers: Mapping[str, str], scheme: str, host: str | None) -> str | None:
    """Why this request must be refused, or None. ``expected``: the session's token;
    ``scheme`` and ``host``: where the console was reached (the request's own)."""
    foreign = foreign_origin(headers, scheme, host)
    if foreign is not None:
        return foreign
    presented = headers.get(HEADER)
    if not presented:
        return f"no {HEADER} header"
    if not hmac.compare_digest(expected.encode(), presented.encode()):
        return f"wrong {HEADER}"
    return None


def foreign_origin(headers: Mapping[str, str], scheme: str, host: str | None) -> str | None:
    """Why the request's ``Origin`` (if it sent one) is not this console, or None."""
    origin = headers.get("Origin")
    if origin and host and origin != f"{scheme}://{host}":
        return f"origin {origin!r} is not this console"
    return None

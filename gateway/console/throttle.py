"""Failed sign-ins throttled per client address (OWASP Authentication Cheat Sheet,
"protect against automated attacks").

After ``free`` failures in a row from one address, that address must wait before its next
attempt: ``base`` seconds, doubling with each further failure up to ``most`` seconds. An
attempt during the wait is refused without checking the password (no argon2 work for it),
so parallel guesses gain nothing. A success clears the address. The key is the address,
not the account name: a stranger guessing cannot lock the operator on shift out of their
own account. Times are on the steady clock; at most ``cap`` addresses are remembered, the
least recently failing one forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

FREE = 5  # failures in a row before an address has to wait
BASE = 2.0  # seconds of the first wait
MOST = 300.0  # seconds of the longest wait
CAP = 1024  # addresses remembered


@dataclass(slots=True)
class _Failures:
    count: int
    until: float  # steady seconds before which the address may not try


class SigninThrottle:
    def __init__(
        self, free: int = FREE, base: float = BASE, most: float = MOST, cap: int = CAP
    ) -> None:
        self.free, self.base, self.most, self.cap = free, base, most, cap
        self._by_address: OrderedDict[str, _Failures] = OrderedDict()

    def wait(self, address: str, now: float) -> float:
        """Seconds ``address`` must still wait before trying (0: it may try now)."""
        failures = self._by_address.get(address)
        return 0.0 if failures is None else max(0.0, failures.until - now)

    def failed(self, address: str, now: float) -> None:
        failures = self._by_address.pop(address, None) or _Failures(0, now)
        failures.count += 1
        over = failures.count - self.free
        if over >= 0:
            failures.until = now + min(self.most, self.base * 2.0 ** min(over, 32))
        self._by_address[address] = failures  # the most recent last
        while len(self._by_address) > self.cap:
            self._by_address.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._by_address.pop(address, None)

    def __len__(self) -> int:
        return len(self._by_address)

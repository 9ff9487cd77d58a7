"""The gateway's request-frequency limit: a sliding window over accepted requests.

OpenD counts per account, across every connection and process, and a rejected request costs nothing;
only accepted requests enter the window.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from proto_client.rate_limit import RateLimit


def parse_rate(text: str) -> RateLimit | None:
    """`30/30` -> RateLimit(30, 30.0); `off` -> None (no limit)."""
    if text.strip().lower() == "off":
        return None
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise ValueError(f"rate {text!r}: {exc} (or 'off' for no limit)") from None


def rejection_message(rate: RateLimit) -> str:
    return f"request too frequent, at most {rate.requests} requests per {rate.seconds:g} seconds"


@dataclass
class SlidingWindow:
    spec: RateLimit
    clock: Callable[[], float] = time.monotonic
    _accepted: deque[float] = field(default_factory=deque)

    def try_acquire(self) -> bool:
        """Admit one request if the window has room, recording it; otherwise leave the window as is."""
        now = self.clock()
        horizon = now - self.spec.seconds
        while self._accepted and self._accepted[0] <= horizon:
            self._accepted.popleft()
        if len(self._accepted) >= self.spec.requests:
            return False
        self._accepted.append(now)
        return True

"""The gateway's request-frequency limit: a sliding window over accepted requests.

OpenD counts per account, across every connection and process, and a rejected request costs nothing;
only accepted requests enter the window.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

_RATE = re.compile(r"(\d+)/(\d+(?:\.\d+)?)")


@dataclass(frozen=True, slots=True)
class RateSpec:
    """At most `requests` accepted requests in any `seconds`."""

    requests: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> RateSpec | None:
        """`30/30` -> RateSpec(30, 30.0); `off` -> None (no limit)."""
        cleaned = text.strip().lower()
        if cleaned == "off":
            return None
        match = _RATE.fullmatch(cleaned.replace(" ", ""))
        if not match:
            raise ValueError(f"rate {text!r}: expected REQUESTS/SECONDS (e.g. 30/30) or 'off'")
        requests, seconds = int(match.group(1)), float(match.group(2))
        if requests < 1 or seconds <= 0:
            raise ValueError(f"rate {text!r}: both numbers must be positive")
        return cls(requests, seconds)

    def rejection_message(self) -> str:
        return f"request too frequent, at most {self.requests} requests per {self.seconds:g} seconds"


@dataclass
class SlidingWindow:
    spec: RateSpec
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

"""The gateway's request-frequency limit as `REQUESTS/SECONDS`, parsed once for the loader and the simulator."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `requests` requests in any sliding window of `seconds`."""

    requests: int
    seconds: float

    def __post_init__(self) -> None:
        if self.requests < 1 or not 0 < self.seconds < float("inf"):
            raise ValueError(f"rate limit {self}: both numbers must be positive")

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """`30/30` or ` 6 / 2.5 `; ValueError says what was expected."""
        match = _RATE.fullmatch(text)
        if not match:
            raise ValueError("expected REQUESTS/SECONDS, e.g. 30/30")
        requests, seconds = int(match.group(1)), float(match.group(2))
        if requests < 1 or seconds <= 0:
            raise ValueError("both numbers must be positive")
        return cls(requests, seconds)

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds:g}"

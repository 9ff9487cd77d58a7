"""Request accounting, published as a JSON file so tests and benchmarks count what was really served."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class GatewayStats:
    """Counters over Qot_GetShortInterest requests, and the listing protos' accepted and refused requests."""

    requests: int = 0  # every 3249 request received, whatever happened to it
    accepted: int = 0  # admitted by the rate limit (and so counted in its window)
    rejected_rate_limit: int = 0  # refused by the sliding window
    rejected_injected: int = 0  # refused by --reject-every
    rejected_not_logged_in: int = 0  # refused by --not-logged-in
    dropped: int = 0
    corrupted: int = 0
    delayed: int = 0
    connections: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    accepted_at: list[float] = field(default_factory=list)
    # The listing protos (3202, 3205, 3213, 3222), by proto id: each has a rate window of its own.
    listing_accepted: Counter[int] = field(default_factory=Counter)
    listing_rejected: Counter[int] = field(default_factory=Counter)

    def as_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "accepted": self.accepted,
            "rejected_rate_limit": self.rejected_rate_limit,
            "rejected_injected": self.rejected_injected,
            "rejected_not_logged_in": self.rejected_not_logged_in,
            "dropped": self.dropped,
            "corrupted": self.corrupted,
            "delayed": self.delayed,
            "connections": self.connections,
            "by_code": dict(sorted(self.by_code.items())),
            "accepted_at": list(self.accepted_at),
            "listing_accepted": {str(k): v for k, v in sorted(self.listing_accepted.items())},
            "listing_rejected": {str(k): v for k, v in sorted(self.listing_rejected.items())},
        }


def write_stats(path: Path, stats: GatewayStats) -> None:
    """Replace `path` atomically, so a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(stats.as_json(), handle)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise

"""Fault injection: what the gateway does wrong, and to which request.

Every knob counts 3249 requests globally (across connections), so "every 3rd request" means the same
thing however a client spreads its work.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class CorruptMode(Enum):
    BAD_MAGIC = "bad-magic"
    BAD_SHA1 = "bad-sha1"
    TRUNCATED = "truncated"  # the header claims more than is sent, then the connection closes
    HUGE_LENGTH = "huge-length"  # the header claims a ~4 GB body


@dataclass(frozen=True, slots=True)
class FaultPlan:
    drop_every: int = 0
    delay_seconds: float = 0.0
    delay_every: int = 1
    corrupt_mode: CorruptMode | None = None
    corrupt_every: int = 0
    reject_every: int = 0

    def __post_init__(self) -> None:
        for name in ("drop_every", "delay_every", "corrupt_every", "reject_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must be 0 (off) or a positive count")
        if self.delay_seconds < 0:
            raise ValueError(f"delay must be 0 or more seconds, got {self.delay_seconds}")
        if self.corrupt_every and self.corrupt_mode is None:
            raise ValueError("corrupt-every needs a corrupt mode")

    def drops(self, n: int) -> bool:
        return _every(self.drop_every, n)

    def rejects(self, n: int) -> bool:
        return _every(self.reject_every, n)

    def delay_for(self, n: int) -> float:
        return self.delay_seconds if self.delay_seconds and _every(self.delay_every, n) else 0.0

    def corruption_for(self, n: int) -> CorruptMode | None:
        return self.corrupt_mode if self.corrupt_mode and _every(self.corrupt_every, n) else None


def _every(period: int, n: int) -> bool:
    return period > 0 and n % period == 0


HUGE_BODY_LEN = 0xFFFF_FFF0  # ~4 GB: what a corrupt or hostile peer might claim


def corrupt_frame(mode: CorruptMode, frame: bytes) -> tuple[bytes, bool]:
    """The malformed bytes to send instead of `frame`, and whether to close the connection after them.

    bad-magic and bad-sha1 keep the stream aligned; truncated and huge-length leave it unframeable,
    so the connection ends after them.
    """
    header_size = 44
    if mode is CorruptMode.BAD_MAGIC:
        return b"XX" + frame[2:], False
    if mode is CorruptMode.BAD_SHA1:
        sha_start = 16
        flipped = bytes(b ^ 0xFF for b in frame[sha_start : sha_start + 20])
        return frame[:sha_start] + flipped + frame[sha_start + 20 :], False
    if mode is CorruptMode.TRUNCATED:
        body_len = len(frame) - header_size
        return frame[: header_size + body_len // 2], True
    huge = HUGE_BODY_LEN.to_bytes(4, "little")
    return frame[:12] + huge + frame[16:], True

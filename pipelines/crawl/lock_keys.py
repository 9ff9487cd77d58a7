"""PostgreSQL advisory-lock keys: one 64-bit key per name, the same in every process."""

from __future__ import annotations

import hashlib


def advisory_lock_key(name: str) -> int:
    """A signed 64-bit key for `name` (advisory locks take a bigint); stable across processes and versions."""
    digest = hashlib.sha1(f"shortinterest.{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)

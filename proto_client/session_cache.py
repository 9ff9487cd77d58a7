"""A file cache of exchange trading days, so a process that needs them skips building the calendar.

Building XNYS and XHKG with `exchange_calendars` (and importing it, with pandas and numpy) costs about two thirds
of a second of CPU, which every gateway, `shortinterest` command and run worker paid at start. The sessions
depend only on the library's release and the span asked for, so they are kept per release and span under
`$XDG_CACHE_HOME/shortinterest` (else `~/.cache/shortinterest`): a new release of `exchange_calendars`, with
new holiday announcements, is a new file. A cache that cannot be read is rebuilt; one that cannot be written
(a read-only or missing home, as under systemd's ProtectHome) is simply not kept.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from datetime import date
from importlib.metadata import version
from pathlib import Path

_FORMAT = 1  # bumped when the file's layout changes


def cache_file(exchange: str, start: date, end: date) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    release = version("exchange_calendars")
    return base / "shortinterest" / f"sessions-v{_FORMAT}-{exchange}-{release}-{start}-{end}.txt"


def read_sessions(path: Path) -> tuple[date, ...] | None:
    """The cached sessions, oldest first, or None when there are none usable."""
    try:
        lines = path.read_text(encoding="ascii").split()
        sessions = tuple(date.fromordinal(int(line)) for line in lines)
    except (OSError, ValueError):
        return None
    ordered = all(a < b for a, b in itertools.pairwise(sessions))
    return sessions if sessions and ordered else None


def write_sessions(path: Path, sessions: tuple[date, ...]) -> None:
    """Keep the sessions for the next process; written whole or not at all (other processes read it at once)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="ascii", dir=path.parent, delete=False) as tmp:
            tmp.write("\n".join(str(day.toordinal()) for day in sessions))
    except OSError:
        return
    try:
        os.replace(tmp.name, path)
    except OSError:
        Path(tmp.name).unlink(missing_ok=True)

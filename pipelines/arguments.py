"""Argument types the commands share, so a date is read and refused the same way by each of them."""

from __future__ import annotations

import argparse
from datetime import date


def trade_date(text: str) -> date:
    """An argparse type for a YYYY-MM-DD date; anything else is refused naming it."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None

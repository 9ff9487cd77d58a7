"""One resolution end to end: resolve the sources, refuse a shrink, write `securities`. Used by
`shortinterest watchlist`, `shortinterest load` and the Dagster universe asset alike."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.crawl.watchlist import Watchlist
from pipelines.universe.gateway import resolve_watchlist
from pipelines.universe.resolve import Resolution, check_shrink
from pipelines.universe.store import UniverseChange, apply_resolution, watchlist_codes


@dataclass(frozen=True, slots=True)
class Refresh:
    resolution: Resolution
    change: UniverseChange


def refresh_universe(
    settings: Settings, engine: sa.Engine, watchlist: Watchlist, *, allow_shrink: bool = False, dry_run: bool = False
) -> Refresh:
    """Raises a ResolutionError (ShrinkRefusedError among them) before anything is written."""
    resolution = resolve_watchlist(settings, engine, watchlist)
    check_shrink(watchlist_codes(engine), resolution.codes, allow_shrink=allow_shrink)
    return Refresh(resolution, apply_resolution(engine, resolution, dry_run=dry_run))

"""`shortinterest status`: per code, what the warehouse holds and how its last load went.

Lists the watchlist's codes (so a code that never loaded shows up as such), then apart the other codes
found in the warehouse (so a code dropped from the watchlist is not forgotten, and its old errors do not
mix with the watchlist's). `--prune` forgets those codes' crawl state; their rows stay. `--check` prints only
what needs a person and exits 1 if anything does (pipelines/crawl/health.py).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime

import sqlalchemy as sa

from pipelines.config import ConfigError, Settings
from pipelines.crawl.health import problems
from pipelines.crawl.watchlist import WatchlistError, load_watchlist
from pipelines.failures import fail, first_line
from pipelines.orchestration.quality import market_today
from pipelines.tables import format_table
from pipelines.universe.store import RECHECK_EMPTY_AFTER, empty_histories
from pipelines.universe.store import watchlist_codes as watchlist_codes_of
from pipelines.warehouse import (
    CrawlState,
    create_engine_for,
    ensure_migrated,
    forget_crawl_states,
    list_crawl_states,
    mask_url,
    newest_trade_date,
    read_connection,
    row_counts,
)
from pipelines.warehouse.errors import WarehouseError, WarehouseNotMigratedError

COMMAND = "shortinterest status"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prune",
        action="store_true",
        help="forget the crawl state (last load, errors, cursor) of codes no longer in the watchlist; rows stay",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="health check: exit 0 when every watchlist code holds its newest published report and its last load "
        "succeeded, 1 otherwise, printing one line per problem",
    )
    parser.epilog = "Reads SHORTINTEREST_DATABASE_URL and SHORTINTEREST_WATCHLIST; sends nothing to the gateway."


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        engine = create_engine_for(settings.database_url)
    except (ConfigError, WarehouseError) as exc:
        return fail(COMMAND, str(exc), 2)
    watchlist_codes: tuple[str, ...] = ()
    resolved = False
    try:
        watchlist = load_watchlist(settings.watchlist_path)
        watchlist_codes, resolved = watchlist.codes, watchlist.sources.needs_gateway
    except WatchlistError as exc:
        if args.check:
            return fail(COMMAND, f"watchlist: {exc}", 1)
        if args.prune:
            return fail(COMMAND, f"{exc}\nnothing was pruned: the watchlist says which codes to keep", 2)
        print(f"{COMMAND}: warning: {exc}", file=sys.stderr)
    try:
        ensure_migrated(engine)
        if resolved:  # groups, plates, markets: the last resolution says what is in the watchlist
            watchlist_codes = tuple(watchlist_codes_of(engine))
        if args.prune:
            with engine.begin() as conn:
                dropped = {state.code for state in list_crawl_states(conn)} - set(watchlist_codes)
                forgotten = forget_crawl_states(conn, dropped)
            print(f"forgot the crawl state of {forgotten} code(s) no longer in the watchlist; their rows stay")
        with read_connection(engine) as conn:
            states = {state.code: state for state in list_crawl_states(conn)}
            counts = row_counts(conn)
            codes = list(watchlist_codes) + sorted((set(states) | set(counts)) - set(watchlist_codes))
            newest = {code: newest_trade_date(conn, code) for code in codes if code in counts}
        empty = empty_histories(engine)
    except WarehouseNotMigratedError as exc:
        return fail(COMMAND, str(exc), 1)
    except sa.exc.SQLAlchemyError as exc:
        return fail(COMMAND, f"cannot read warehouse {mask_url(engine.url)}: {first_line(exc)}", 1)
    finally:
        engine.dispose()

    if args.check:
        return _check(watchlist_codes, states, newest)
    watched = set(watchlist_codes)
    print(f"warehouse {mask_url(engine.url)}, watchlist {settings.watchlist_path}")
    print(_table([c for c in codes if c in watched], states, newest, counts, empty))
    errors = [s for s in (states.get(c) for c in codes if c in watched) if s is not None and s.last_error]
    if errors:
        print("\nlast errors:")
        for state in errors:
            print(f"  {state.code} ({_when(state.last_error_at)}): {state.last_error}")
    others = [c for c in codes if c not in watched]
    if others:
        print(f"\nnot in the watchlist ({len(others)}):")
        print(_table(others, states, newest, counts, empty))
        if any(code in states for code in others):
            print(f"`{COMMAND} --prune` forgets their crawl state; their rows stay")
    return 0


def _check(codes: tuple[str, ...], states: dict[str, CrawlState], newest: dict[str, date | None]) -> int:
    found = problems(codes, states, newest, market_today)
    for problem in found:
        print(problem.line())
    if found:
        return 1
    print(f"ok: all {len(codes)} watchlist code(s) hold their newest published report and loaded cleanly")
    return 0


def _table(
    codes: list[str],
    states: dict[str, CrawlState],
    newest: dict[str, date | None],
    counts: dict[str, int],
    empty: dict[str, datetime],
) -> str:
    rows = []
    for code in codes:
        state = states.get(code)
        newest_date = newest.get(code)
        rows.append(
            [
                code,
                newest_date.isoformat() if newest_date else "-",
                counts.get(code, 0),
                _when(state.last_success_at if state else None),
                _when(state.last_attempt_at if state else None),
                (state.last_gateway if state else None) or "-",
                _empty(empty[code]) if code in empty else _condition(state),
            ]
        )
    headers = ["code", "newest trade date", "rows", "last load", "last attempt", "gateway", "state"]
    return format_table(headers, rows, right=[2])


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def _empty(checked: datetime) -> str:
    return f"no history at {_when(checked)}: re-checked monthly, next after {(checked + RECHECK_EMPTY_AFTER):%Y-%m-%d}"


def _condition(state: CrawlState | None) -> str:
    if state is None:
        return "never loaded"
    if state.full_crawl_cursor:
        return f"full crawl interrupted, resumes at key {state.full_crawl_cursor}"
    if state.last_error:
        return "last load failed"
    return "ok" if state.last_success_at else "never completed"

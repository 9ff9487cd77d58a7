"""Run retries: Dagster runs a failed refresh or backfill again, and the retry picks up where it stopped.

Runs wait out an outage the way `shortinterest load` does; one that outlasts SHORTINTEREST_OUTAGE_TIMEOUT
fails, and Dagster's run-retry daemon (`run_retries` in dagster.yaml; `dagster/max_retries` on the refresh
jobs) launches the retry, so a scheduled refresh does not quietly skip a week. Two things make the retry
worth having:

* Dagster 1.13 has no delay between run retries (only op retries have one), so the retry brings its own:
  it waits for the gateway and the warehouse at start, under the same bound, instead of failing at once
  against a dependency that is still down and burning the next retry within seconds.
* It skips the codes an earlier attempt of the same run already loaded: re-reading them would spend the
  rate-limit budget on nothing (a 10,000-code refresh is hours of requests).

Only automatic retries do this; a run re-executed by hand loads every code it was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg
import sqlalchemy as sa

from pipelines.warehouse.engine import read_connection
from pipelines.warehouse.schema import crawl_state

MAX_RETRIES_TAG = "dagster/max_retries"
RETRY_STRATEGY_TAG = "dagster/retry_strategy"
RETRY_NUMBER_TAG = "dagster/retry_number"  # set by the run-retry daemon on the runs it launches
# Attempts after the first; each may wait up to SHORTINTEREST_OUTAGE_TIMEOUT for the gateway at start.
RUN_RETRIES = 3


def run_retry_tags() -> dict[str, str]:
    """Tags of the refresh jobs: retried by the daemon, from the failed step (the load) on."""
    return {MAX_RETRIES_TAG: str(RUN_RETRIES), RETRY_STRATEGY_TAG: "FROM_FAILURE"}


def first_attempt_start(context: dg.AssetExecutionContext) -> datetime | None:
    """When the first attempt of this run started, if this run is an automatic retry of it."""
    run = context.run
    if RETRY_NUMBER_TAG not in run.tags or run.root_run_id is None:
        return None
    record = context.instance.get_run_record_by_id(run.root_run_id)
    if record is None:
        return None
    started = record.start_time or record.create_timestamp.timestamp()
    return datetime.fromtimestamp(started, UTC)


def loaded_since(engine: sa.Engine, codes: Sequence[str], since: datetime) -> set[str]:
    """The codes among `codes` whose crawl finished cleanly at or after `since`, with no crawl left unfinished."""
    query = sa.select(crawl_state.c.code).where(
        crawl_state.c.code.in_(list(codes)),
        crawl_state.c.last_success_at >= since,
        crawl_state.c.full_crawl_cursor.is_(None),
    )
    with read_connection(engine) as conn:
        return set(conn.execute(query).scalars())

"""`short_interest_report`: the movers report as an asset, made again after every load of the tables.

It is not partitioned: one report covers the whole watchlist. The sensor below requests it once the runs
that loaded either table have ended, successful or not (a run fails when one code failed, and the
others' new figures still deserve a report), and waits while any such run is still going, so a backfill
split over several runs yields one report at its end rather than one per run.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from pipelines.analysis.report import build_report
from pipelines.orchestration.jobs import asset_key_for, full_refresh_job_name, refresh_job_name
from pipelines.orchestration.partitions import partition_name
from pipelines.orchestration.resources import WarehouseResource
from pipelines.warehouse.engine import read_connection
from proto_client.security import Market

REPORT_KEY = dg.AssetKey("short_interest_report")
REPORT_JOB = "short_interest_report_job"
TABLE_KEYS = frozenset(asset_key_for(market) for market in Market)
_LOADING_JOBS = frozenset(name for m in Market for name in (refresh_job_name(m), full_refresh_job_name(m)))
_ENDED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
_GOING = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dg.asset(
    key=REPORT_KEY,
    deps=sorted(TABLE_KEYS, key=str),
    group_name="short_interest",
    kinds={"sql"},
    # The report is recorded as a materialization only, not also as the step's output: it is the largest
    # value this code location writes, and Dagster would store an output's metadata a second time.
    output_required=False,
    description=(
        "The watchlist's largest changes in shares short since each code's previous report (both markets), "
        "the US days-to-cover leaders and a chart of the top movers against their close price."
    ),
)
def short_interest_report(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.AssetMaterialization]:
    codes = [code for m in Market for code in context.instance.get_dynamic_partitions(partition_name(m))]
    with warehouse.engine() as engine, read_connection(engine) as conn:
        report = build_report(conn, codes or None)
    top = report.movers[0] if report.movers else None
    context.log.info(
        f"report over {len(codes) or 'every stored'} code(s): {len(report.movers)} movers, "
        f"{len(report.cover_leaders)} days-to-cover leaders"
    )
    yield dg.AssetMaterialization(
        asset_key=REPORT_KEY,
        metadata={
            "report": dg.MetadataValue.md(report.markdown),
            "codes": len(codes),
            "movers": len(report.movers),
            "top_mover": top.code if top else "none",
            "top_mover_change_percent": round(top.change_percent, 2) if top and top.change_percent else 0.0,
        },
    )


report_job = dg.define_asset_job(
    REPORT_JOB, selection=dg.AssetSelection.assets(REPORT_KEY), description="Make the movers report again."
)


# Partition tags mark runs of the tables: they are the only partitioned assets of this code location.
_PARTITION_TAGS = ("dagster/partition", "dagster/asset_partition_range_start")


def _loaded_tables(run: dg.DagsterRun) -> bool:
    """Whether `run` loads either table: a refresh job, a selection of a table, or a run over codes."""
    if run.job_name in _LOADING_JOBS or any(tag in run.tags for tag in _PARTITION_TAGS):
        return True
    return bool(run.asset_selection and run.asset_selection & TABLE_KEYS)


@dg.sensor(
    name="report_after_loads",
    job_name=REPORT_JOB,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Makes short_interest_report again once the runs that loaded the tables have ended.",
)
def report_after_loads_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    instance = context.instance
    going = instance.get_runs(filters=dg.RunsFilter(statuses=_GOING), limit=200)
    if any(_loaded_tables(run) for run in going):
        return dg.SkipReason("tables are being loaded; the report waits for those runs to end")
    # Loads that ended before the newest report are in it, whoever made it (this sensor, the demo, a person).
    latest = instance.get_latest_materialization_event(REPORT_KEY)
    since = max(float(context.cursor) if context.cursor else 0.0, latest.timestamp if latest else 0.0)
    ended = instance.get_run_records(
        filters=dg.RunsFilter(statuses=_ENDED, updated_after=datetime.fromtimestamp(since, UTC)), limit=200
    )
    newest = max(
        (r.update_timestamp.timestamp() for r in ended if _loaded_tables(r.dagster_run)),
        default=0.0,
    )
    if newest <= since:
        newest = 0.0
    if not newest:
        return dg.SkipReason("no load of the tables has ended since the last report")
    context.update_cursor(str(newest))
    return dg.RunRequest(run_key=f"report-after-{newest:.6f}")

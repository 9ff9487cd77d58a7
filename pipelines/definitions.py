"""The Dagster code location: `dagster dev` (via workspace.yaml) and `dagster definitions validate` load `defs`.

Adding a code to the watchlist needs no change here: the watchlist_partitions sensor adds its partition. A
malformed variable or watchlist fails the load, naming the variable or the file and its bad entries.
"""

from __future__ import annotations

import dagster as dg

from pipelines.config import AlertSettings
from pipelines.orchestration.alerts.sensors import alert_sensors
from pipelines.orchestration.assets import short_interest_assets
from pipelines.orchestration.jobs import full_refresh_job, refresh_job
from pipelines.orchestration.report import report_after_loads_sensor, report_job, short_interest_report
from pipelines.orchestration.resources import default_resources
from pipelines.orchestration.schedules import weekly_schedules
from pipelines.orchestration.sensors import watchlist_partitions_sensor
from pipelines.orchestration.universe import universe, universe_daily, universe_job
from proto_client.security import Market


def build_definitions() -> dg.Definitions:
    """Everything the code location serves; resources read the environment when this is called."""
    return dg.Definitions(
        assets=[universe, *short_interest_assets(), short_interest_report],
        jobs=[
            *(job for market in Market for job in (refresh_job(market), full_refresh_job(market))),
            report_job,
            universe_job,
        ],
        schedules=[*weekly_schedules(), universe_daily],
        sensors=[watchlist_partitions_sensor, report_after_loads_sensor, *alert_sensors(AlertSettings.from_env())],
        resources=default_resources(),
        # Every step of a run in the run's own process: the steps share one gateway budget, so a process per
        # step (Dagster's default) would buy no speed and cost each run another interpreter start. Pools
        # (`opend_gateway`) are still honoured step by step.
        executor=dg.in_process_executor,
    )


defs = build_definitions()

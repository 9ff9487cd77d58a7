"""A run that failed for good: after its run retries, not at each attempt, naming the codes it did not load.

Dagster tags a failed run `dagster/will_retry` when the run-retry daemon is going to launch it again; those
attempts say nothing. The last attempt's failure names its codes: the assets' step failure carries them
(`failed_codes` and `errors` when codes failed, `not_loaded` when an outage stopped the run).
"""

from __future__ import annotations

import dagster as dg

from pipelines.config import AlertSettings
from pipelines.orchestration.alerts.delivery import deliver
from pipelines.orchestration.alerts.links import run_link
from pipelines.orchestration.alerts.message import LISTED_CODES, Alert, AlertKind, listed
from pipelines.orchestration.run_retries import RETRY_NUMBER_TAG

WILL_RETRY_TAG = "dagster/will_retry"
SENSOR_NAME = "alert_on_run_failure"


def run_failure_alert(instance: dg.DagsterInstance, run: dg.DagsterRun, ui_url: str) -> Alert:
    codes, errors, description = _not_loaded(instance, run.run_id)
    retries = run.tags.get(RETRY_NUMBER_TAG, "0")
    title = f"{run.job_name} failed for good (after {retries} run retries)"
    if codes:
        title += f": {listed(codes)} not loaded"
    lines = [f"- {code}: {errors[code]}" for code in codes[:LISTED_CODES] if code in errors]
    details = "\n".join(lines) if lines else description
    return Alert(
        AlertKind.RUN_FAILED, title, details, codes=tuple(codes), run_id=run.run_id, link=run_link(ui_url, run.run_id)
    )


def _not_loaded(instance: dg.DagsterInstance, run_id: str) -> tuple[list[str], dict[str, str], str]:
    """The codes the run's step failures name, their errors, and the first failure's description."""
    codes: list[str] = []
    errors: dict[str, str] = {}
    description = ""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        user = getattr(data, "user_failure_data", None)
        error = getattr(data, "error", None)
        if user is not None:
            description = description or (user.description or "").splitlines()[0]
            for key in ("failed_codes", "not_loaded"):
                value = user.metadata.get(key)
                if value is not None and isinstance(value.value, list):
                    codes += [str(code) for code in value.value if str(code) not in codes]
            found = user.metadata.get("errors")
            if found is not None and isinstance(found.value, dict):
                errors.update({str(k): str(v) for k, v in found.value.items()})
        elif error is not None:
            description = description or error.message.strip().splitlines()[0]
    return codes, errors, description


def run_failure_sensor(settings: AlertSettings) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=settings.interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Alerts when a run of this code location failed for good, after its run retries.",
    )
    def alert_on_run_failure(context: dg.RunFailureSensorContext) -> dg.SkipReason | None:
        run = context.instance.get_run_by_id(context.dagster_run.run_id) or context.dagster_run
        if run.tags.get(WILL_RETRY_TAG) == "true":
            return dg.SkipReason(f"run {run.run_id} failed and will be retried")
        alert = run_failure_alert(context.instance, run, settings.ui_url)
        deliver(alert, settings, context.log)
        return None

    return alert_on_run_failure

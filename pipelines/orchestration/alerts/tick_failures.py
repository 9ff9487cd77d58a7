"""Schedules and sensors whose ticks fail: one message when one starts failing, one when it works again."""

from __future__ import annotations

import json

import dagster as dg
from dagster._core.scheduler.instigation import TickStatus
from dagster._utils.error import SerializableErrorInfo

from pipelines.config import AlertSettings
from pipelines.orchestration.alerts.delivery import deliver
from pipelines.orchestration.alerts.links import automation_link
from pipelines.orchestration.alerts.message import Alert, AlertKind

SENSOR_NAME = "alert_on_tick_failures"
_WORKED = (TickStatus.SUCCESS, TickStatus.SKIPPED)


MAX_ERROR_CHARS = 1000


def _root_message(error: SerializableErrorInfo) -> str:
    """The error the tick's code raised, not Dagster's wrapper around it ("Error occurred during ...")."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()[:MAX_ERROR_CHARS]


def tick_failure_sensor(settings: AlertSettings) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=settings.interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Alerts when a schedule's or sensor's tick fails, and when it works again.",
    )
    def alert_on_tick_failures(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        failing: list[str] = json.loads(context.cursor) if context.cursor else []
        alerts: list[Alert] = []
        for state in context.instance.all_instigator_state():
            ticks = context.instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
            if not ticks:
                continue
            tick, name = ticks[0], state.instigator_name
            kind = state.instigator_type.value.lower()
            if tick.status is TickStatus.FAILURE and name not in failing:
                failing.append(name)
                error = _root_message(tick.error) if tick.error else "no error recorded"
                title = f"{kind} {name} failed its tick"
                alerts.append(Alert(AlertKind.TICK_FAILED, title, error, link=automation_link(settings.ui_url)))
            elif tick.status in _WORKED and name in failing:
                failing.remove(name)
                title = f"{kind} {name} works again"
                alerts.append(Alert(AlertKind.TICK_RECOVERED, title, link=automation_link(settings.ui_url)))
        for alert in alerts:
            deliver(alert, settings, context.log)
        context.update_cursor(json.dumps(sorted(failing)))
        return dg.SkipReason(f"{len(alerts)} alert(s) sent" if alerts else "no tick changed state")

    return alert_on_tick_failures

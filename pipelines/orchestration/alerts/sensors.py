"""The alert sensors of the code location, or none when no alert destination is configured."""

from __future__ import annotations

import logging

import dagster as dg

from pipelines.config import AlertSettings
from pipelines.orchestration.alerts.check_states import asset_check_sensor
from pipelines.orchestration.alerts.run_failures import run_failure_sensor
from pipelines.orchestration.alerts.tick_failures import tick_failure_sensor


def alert_sensors(settings: AlertSettings) -> list[dg.SensorDefinition]:
    if not settings.enabled:
        logging.getLogger(__name__).warning(
            "alerting is off: set SHORTINTEREST_ALERT_WEBHOOK_URL and/or SHORTINTEREST_ALERT_EMAIL_TO "
            "(docs/operators/alerts.md) to hear of failed runs, failing checks and failing ticks"
        )
        return []
    return [run_failure_sensor(settings), asset_check_sensor(settings), tick_failure_sensor(settings)]

"""Failing asset checks: one message when a check starts failing (or fails differently), one when it recovers.

The sensor's cursor keeps, per check, the newest evaluation it has seen and the failing state it last alerted
on (the offending codes, as a short digest): a check that fails the same way every week alerts once, not every
week, until it passes again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from pipelines.config import AlertSettings
from pipelines.orchestration.alerts.delivery import deliver
from pipelines.orchestration.alerts.links import asset_link
from pipelines.orchestration.alerts.message import Alert, AlertKind, listed
from pipelines.orchestration.checks import CHECK_NAMES
from pipelines.orchestration.jobs import asset_key_for
from proto_client.security import Market

SENSOR_NAME = "alert_on_asset_checks"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The newest evaluation of one check, as the sensor judges it."""

    key: dg.AssetCheckKey
    storage_id: int
    passed: bool
    description: str
    codes: tuple[str, ...]
    run_id: str

    @property
    def state(self) -> str | None:
        """None when passing, else a digest of how it fails."""
        if self.passed:
            return None
        return hashlib.sha256("\n".join(self.codes).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Seen:
    storage_id: int
    failing: str | None


def check_keys() -> list[dg.AssetCheckKey]:
    return [dg.AssetCheckKey(asset_key_for(m), name) for m in Market for name in CHECK_NAMES]


def read_cursor(cursor: str | None) -> dict[str, Seen]:
    raw = json.loads(cursor) if cursor else {}
    return {name: Seen(int(v["id"]), v.get("failing")) for name, v in raw.items()}


def write_cursor(seen: dict[str, Seen]) -> str:
    return json.dumps({name: {"id": s.storage_id, "failing": s.failing} for name, s in sorted(seen.items())})


def transitions(
    evaluations: Sequence[Evaluation], seen: dict[str, Seen], ui_url: str
) -> tuple[list[Alert], dict[str, Seen]]:
    """The alerts the new evaluations call for, and the cursor's next state."""
    alerts: list[Alert] = []
    after = dict(seen)
    for evaluation in evaluations:
        name = evaluation.key.to_user_string()
        before = seen.get(name)
        if before is not None and evaluation.storage_id <= before.storage_id:
            continue
        failing_before = before.failing if before else None
        state = evaluation.state
        after[name] = Seen(evaluation.storage_id, state)
        link = asset_link(ui_url, evaluation.key.asset_key, checks=True)
        asset = evaluation.key.asset_key.to_user_string()
        if state is not None and state != failing_before:
            title = f"check {name} failed" + (f": {listed(evaluation.codes)}" if evaluation.codes else "")
            alerts.append(
                Alert(
                    AlertKind.CHECK_FAILED,
                    title,
                    evaluation.description,
                    asset,
                    evaluation.codes,
                    evaluation.run_id,
                    link,
                )
            )
        elif state is None and failing_before is not None:
            title = f"check {name} passes again"
            alerts.append(
                Alert(AlertKind.CHECK_RECOVERED, title, evaluation.description, asset, (), evaluation.run_id, link)
            )
    return alerts, after


def latest_evaluations(instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey]) -> list[Evaluation]:
    found: list[Evaluation] = []
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(keys))
    for key, record in records.items():
        event = record.event.dagster_event if record.event else None
        data = event.event_specific_data if event else None
        if not isinstance(data, dg.AssetCheckEvaluation):
            continue  # planned, not evaluated yet
        offending = data.metadata.get("offending_codes")
        codes = offending.value if offending is not None and isinstance(offending.value, list) else []
        found.append(
            Evaluation(key, record.id, data.passed, data.description or "", tuple(str(c) for c in codes), record.run_id)
        )
    return sorted(found, key=lambda e: e.storage_id)


def asset_check_sensor(settings: AlertSettings) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=settings.interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Alerts when an asset check starts failing, fails differently, or passes again.",
    )
    def alert_on_asset_checks(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        alerts, after = transitions(
            latest_evaluations(context.instance, check_keys()), read_cursor(context.cursor), settings.ui_url
        )
        for alert in alerts:
            deliver(alert, settings, context.log)
        context.update_cursor(write_cursor(after))
        return dg.SkipReason(f"{len(alerts)} alert(s) sent" if alerts else "no check changed state")

    return alert_on_asset_checks

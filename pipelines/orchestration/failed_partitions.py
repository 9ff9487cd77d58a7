"""Mark the codes a run did not load as failed, when the run records one planned event for its whole range.

By default Dagster writes one "materialization planned" event per partition at run start: about 1 KB of event
log (row and index entries) per code per refresh, as much again as the code's materialization itself. With
DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS (set in deploy/shortinterest.env) a ranged run records one
planned event for its whole range instead; but Dagster reads the per-partition events to tell which partitions
of a failed run failed, so without them the UI would show a code that failed as last week's green. The asset
records the per-partition event itself for just those codes: one that failed, or that an error stopped the run
before, gets it before the run fails, and the UI marks it failed as it always did.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import dagster as dg
from dagster._core.events import (
    AssetMaterializationPlannedData,
    DagsterEvent,
    DagsterEventBatchMetadata,
    generate_event_batch_id,
)


def planned_per_range(instance: dg.DagsterInstance) -> bool:
    """Whether runs on `instance` record one planned event per asset for a partition range."""
    return instance.event_log_storage.supports_partition_subset_in_asset_materialization_planned_events


def mark_not_loaded(context: dg.AssetExecutionContext, key: dg.AssetKey, codes: Sequence[str]) -> None:
    """Record a planned event of this run for each of `codes`: once the run fails, the UI shows them failed.

    Nothing to do where Dagster already recorded one per partition (the default, and every SQLite instance)."""
    if not codes or not planned_per_range(context.instance):
        return
    step_key = context.get_step_execution_context().step.key
    batch = generate_event_batch_id()
    for index, code in enumerate(codes):
        event = DagsterEvent.build_asset_materialization_planned_event(
            context.run.job_name, step_key, AssetMaterializationPlannedData(key, partition=code)
        )
        context.instance.report_dagster_event(
            event,
            context.run.run_id,
            logging.DEBUG,
            batch_metadata=DagsterEventBatchMetadata(batch, index == len(codes) - 1),
        )

"""Asset jobs per market: the incremental refresh the schedules launch, and a full refresh for the UI.

Each job targets one market because a partitioned job has exactly one partition set (it is inferred
from the selected asset).
"""

from __future__ import annotations

import dagster as dg

from pipelines.orchestration.run_retries import run_retry_tags
from proto_client.security import Market

# Runs carrying this tag share the gateway; dagster.yaml caps how many of them run at once.
GATEWAY_TAG = "shortinterest/gateway"
GATEWAY_TAG_VALUE = "opend"


def asset_key_for(market: Market) -> dg.AssetKey:
    return dg.AssetKey(f"{market.prefix.lower()}_short_interest")


def refresh_job_name(market: Market) -> str:
    return f"{market.prefix.lower()}_short_interest_refresh"


def full_refresh_job_name(market: Market) -> str:
    return f"{market.prefix.lower()}_short_interest_full_refresh"


def refresh_job(market: Market) -> dg.UnresolvedAssetJobDefinition:
    """Incremental: each code re-reads its newest page and stops at rows it already has."""
    return dg.define_asset_job(
        name=refresh_job_name(market),
        selection=dg.AssetSelection.assets(asset_key_for(market)),
        tags={GATEWAY_TAG: GATEWAY_TAG_VALUE, **run_retry_tags()},
        description=f"Incremental refresh of {market.prefix} short interest, then its checks.",
    )


def full_refresh_job(market: Market) -> dg.UnresolvedAssetJobDefinition:
    """Full: re-reads each code's whole history (a backfill of this job is how to repair a code)."""
    key = asset_key_for(market)
    return dg.define_asset_job(
        name=full_refresh_job_name(market),
        selection=dg.AssetSelection.assets(key),
        tags={GATEWAY_TAG: GATEWAY_TAG_VALUE, **run_retry_tags()},
        config={"ops": {key.to_python_identifier(): {"config": {"full": True}}}},
        description=f"Full re-crawl of {market.prefix} short-interest history, then its checks.",
    )

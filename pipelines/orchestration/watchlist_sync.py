"""Mirror the watchlist into the dynamic partition sets, as a plan the sensor and the demo both apply."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dagster as dg

from pipelines.orchestration.partitions import partition_name
from proto_client.security import Market


@dataclass(frozen=True, slots=True)
class MarketSync:
    """What changes in one market's partition set: codes to add (watchlist order) and to delete."""

    market: Market
    add: tuple[str, ...]
    delete: tuple[str, ...]

    @property
    def partitions_def_name(self) -> str:
        return partition_name(self.market)

    @property
    def changed(self) -> bool:
        return bool(self.add or self.delete)


@dataclass(frozen=True, slots=True)
class PartitionSync:
    markets: tuple[MarketSync, ...]

    @property
    def changed(self) -> bool:
        return any(m.changed for m in self.markets)

    def requests(self) -> list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest]:
        """The sensor's way to apply the plan (Dagster records them on the tick)."""
        out: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
        for m in self.markets:
            if m.add:
                out.append(dg.AddDynamicPartitionsRequest(m.partitions_def_name, list(m.add)))
            if m.delete:
                out.append(dg.DeleteDynamicPartitionsRequest(m.partitions_def_name, list(m.delete)))
        return out

    def apply(self, instance: dg.DagsterInstance) -> None:
        """Apply the plan directly, for callers without a sensor tick (the demo, tests)."""
        for m in self.markets:
            if m.add:
                instance.add_dynamic_partitions(m.partitions_def_name, list(m.add))
            for code in m.delete:
                instance.delete_dynamic_partition(m.partitions_def_name, code)

    def summary(self) -> str:
        """Counts and the first few codes: a 10,000-code watchlist must not become one 100 kB log line."""
        parts = []
        for m in self.markets:
            if m.add:
                parts.append(f"{m.partitions_def_name}: added {_first_few(m.add)}")
            if m.delete:
                parts.append(f"{m.partitions_def_name}: removed {_first_few(m.delete)}")
        return "; ".join(parts) or "partitions already match the watchlist"


SUMMARY_CODES = 5


def _first_few(codes: Sequence[str]) -> str:
    if len(codes) <= SUMMARY_CODES:
        return ", ".join(codes)
    return f"{len(codes)} codes: {', '.join(codes[:SUMMARY_CODES])} and {len(codes) - SUMMARY_CODES} more"


def plan_sync(wanted: Callable[[Market], Sequence[str]], current: Callable[[str], Sequence[str]]) -> PartitionSync:
    """Compare the watchlist's codes per market (`wanted`) with the instance's partitions (`current`)."""
    markets = []
    for market in Market:
        want = list(dict.fromkeys(wanted(market)))
        have = list(current(partition_name(market)))
        have_set, want_set = set(have), set(want)
        markets.append(
            MarketSync(
                market,
                add=tuple(c for c in want if c not in have_set),
                delete=tuple(c for c in have if c not in want_set),
            )
        )
    return PartitionSync(tuple(markets))


def sync_partitions(instance: dg.DagsterInstance, codes_for: Callable[[Market], Sequence[str]]) -> PartitionSync:
    """Bring the instance's partitions in line with the watchlist now; returns what changed."""
    plan = plan_sync(codes_for, instance.get_dynamic_partitions)
    plan.apply(instance)
    return plan

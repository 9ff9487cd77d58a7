"""Large batches check timestamps against a table of local day boundaries; it must agree with trade_date_of."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from pipelines.warehouse.validation import LOCAL_DAYS_ALWAYS, LOCAL_DAYS_MAX_SPAN, local_days
from proto_client.records import trade_date_of
from proto_client.security import Market

PG_EPOCH = date(2000, 1, 1)


def pg_day(day: date) -> int:
    return (day - PG_EPOCH).days


@pytest.mark.parametrize(
    ("market", "first", "last"),
    [
        (Market.US, date(2024, 3, 7), date(2024, 3, 13)),  # a 23-hour day: 2024-03-10
        (Market.US, date(2024, 10, 31), date(2024, 11, 6)),  # a 25-hour day: 2024-11-03
        (Market.HK, date(1979, 5, 10), date(1979, 5, 16)),  # Hong Kong's last summer time began 1979-05-13
        (Market.HK, date(2024, 2, 8), date(2024, 2, 14)),
    ],
)
def test_boundaries_agree_with_trade_date_of_around_clock_changes(market: Market, first: date, last: date) -> None:
    span = (last - first).days + 1
    days = np.array([pg_day(first + timedelta(days=i)) for i in range(span)], dtype=np.int32)
    bounds = local_days(days, market)
    assert bounds is not None
    for i, day_no in enumerate(days.tolist()):
        start, end = int(bounds.starts[i]), int(bounds.starts[i + 1])
        day = first + timedelta(days=i)
        for stamp in (start - 1, start, start + 1, (start + end) // 2, end - 1, end):
            expected = trade_date_of(stamp, market) == day
            assert bounds.contain(np.array([day_no], dtype=np.int32), np.array([stamp])) is expected, (day, stamp)


def test_a_day_of_another_length_is_measured_not_assumed() -> None:
    days = np.array([pg_day(date(2024, 3, 10)), pg_day(date(2024, 11, 3))], dtype=np.int32)
    bounds = local_days(days, Market.US)
    assert bounds is not None
    march = bounds.starts[1] - bounds.starts[0]
    november_index = days[1] - bounds.first
    november = bounds.starts[november_index + 1] - bounds.starts[november_index]
    assert (march, november) == (23 * 3600, 25 * 3600)


def test_one_wrong_stamp_among_many_fails_the_whole_check() -> None:
    days = np.array([pg_day(date(2024, 5, 1)) + i for i in range(1000)], dtype=np.int32)
    bounds = local_days(days, Market.HK)
    assert bounds is not None
    stamps = bounds.starts[days - bounds.first].copy()
    assert bounds.contain(days, stamps)
    stamps[637] -= 1  # 23:59:59 of the day before
    assert not bounds.contain(days, stamps)


def test_too_long_a_span_or_no_days_leaves_the_check_to_the_pairwise_path() -> None:
    assert local_days(np.array([0, LOCAL_DAYS_MAX_SPAN + 1], dtype=np.int32), Market.US) is None
    assert local_days(np.array([], dtype=np.int32), Market.US) is None


def test_a_table_wider_than_the_rows_to_check_is_not_built() -> None:
    span = LOCAL_DAYS_ALWAYS + 500
    few = np.array([0, span], dtype=np.int32)
    assert local_days(few, Market.HK) is None  # two rows: two pairwise checks beat 1,500 boundaries
    many = np.linspace(0, span, span + 1).astype(np.int32)
    assert local_days(many, Market.HK) is not None
    assert local_days(np.array([0, LOCAL_DAYS_ALWAYS], dtype=np.int32), Market.HK) is not None  # a small table

"""The warehouse tables as SQLAlchemy Core objects, for queries and for checking migrations against.

The DDL itself lives in `migrations/`; a test keeps the two in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from proto_client.security import Market

READER_ROLE = "shortinterest_reader"
# The services' and loads' role: reads everything, writes what loading writes, no DDL (migration 0009).
LOADER_ROLE = "shortinterest_loader"
VIEW_NAMES = ("short_interest", "short_interest_latest", "short_interest_changes", "short_interest_revisions")

metadata = sa.MetaData()


class UtcDateTime(sa.TypeDecorator[datetime]):
    """TIMESTAMPTZ on PostgreSQL; on SQLite, naive UTC text. Always returns aware UTC datetimes."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} written to the warehouse; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # A string is SQLite's CURRENT_TIMESTAMP default.
        stamp: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _audit_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column(
            "first_loaded_at",
            UtcDateTime(),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
            comment="When this row was first loaded into the warehouse (UTC).",
        ),
        sa.Column(
            "updated_at",
            UtcDateTime(),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
            comment="When a value of this row last changed (UTC); a re-load of identical data leaves it alone.",
        ),
    ]


def _published_on_column(market: Market) -> sa.Column[Any]:
    comment = {
        Market.US: "Day FINRA published this report: 7 NYSE trading days after the settlement date (one that is "
        "not a trading day counts from the trading day before it). Set by the loader from proto_client.publication.",
        Market.HK: "Day the SFC published this report: the Friday a week after the position date's week, or the "
        "last HKEX trading day before it. Set by the loader from proto_client.publication.",
    }
    return sa.Column("published_on", sa.Date(), comment=comment[market])


def _code_column(market: Market) -> sa.Column[str]:
    return sa.Column(
        "code",
        sa.String(32),
        nullable=False,
        comment=f"Full security code with market prefix, e.g. {'US.AAPL' if market is Market.US else 'HK.00700'}.",
    )


def _trade_date_column(market: Market) -> sa.Column[Any]:
    return sa.Column(
        "trade_date",
        sa.Date(),
        nullable=False,
        comment=f"Trading day of the report, in the market's time zone ({market.tz_name}).",
    )


def _source_timestamp_column() -> sa.Column[int]:
    return sa.Column(
        "source_timestamp",
        sa.BigInteger(),
        nullable=False,
        comment="The gateway's timestamp of the trading day: Unix seconds at local midnight of trade_date.",
    )


us_short_interest = sa.Table(
    "us_short_interest",
    metadata,
    _code_column(Market.US),
    _trade_date_column(Market.US),
    _source_timestamp_column(),
    sa.Column("shares_short", sa.BigInteger(), comment="Shares sold short and not yet covered (shares)."),
    sa.Column(
        "short_percent",
        sa.Double(),
        comment="Short interest as a percentage: the number before the % sign (12.34 means 12.34 %).",
    ),
    sa.Column("avg_daily_share_volume", sa.BigInteger(), comment="Average daily share volume (shares)."),
    sa.Column("days_to_cover", sa.Double(), comment="Days to cover: shares_short / avg_daily_share_volume (days)."),
    sa.Column("close_price", sa.Double(), comment="Closing price on trade_date, in the security's currency (USD)."),
    sa.Column(
        "last_close_price",
        sa.Double(),
        comment="Closing price of the previous trading day, in the security's currency (USD).",
    ),
    *_audit_columns(),
    _published_on_column(Market.US),
    sa.PrimaryKeyConstraint("code", "trade_date", name="pk_us_short_interest"),
    sa.CheckConstraint("code LIKE 'US.%'", name="ck_us_short_interest_code_market"),
    sa.CheckConstraint("shares_short >= 0", name="ck_us_short_interest_shares_short_nonneg"),
    sa.CheckConstraint("avg_daily_share_volume >= 0", name="ck_us_short_interest_avg_volume_nonneg"),
    sa.Index("ix_us_short_interest_trade_date", "trade_date"),
    comment="US short interest (FINRA reports, twice a month), one row per security and settlement date.",
)

hk_short_interest = sa.Table(
    "hk_short_interest",
    metadata,
    _code_column(Market.HK),
    _trade_date_column(Market.HK),
    _source_timestamp_column(),
    sa.Column(
        "aggregated_short", sa.BigInteger(), comment="Aggregated reportable short position, open shares (shares)."
    ),
    sa.Column(
        "aggregated_short_ratio",
        sa.Double(),
        comment="Aggregated short position as a percentage of issued shares: the number before the % sign.",
    ),
    sa.Column("close_price", sa.Double(), comment="Closing price on trade_date, in the security's currency (HKD)."),
    sa.Column(
        "last_close_price",
        sa.Double(),
        comment="Closing price of the previous trading day, in the security's currency (HKD).",
    ),
    *_audit_columns(),
    _published_on_column(Market.HK),
    sa.PrimaryKeyConstraint("code", "trade_date", name="pk_hk_short_interest"),
    sa.CheckConstraint("code LIKE 'HK.%'", name="ck_hk_short_interest_code_market"),
    sa.CheckConstraint("aggregated_short >= 0", name="ck_hk_short_interest_aggregated_short_nonneg"),
    sa.Index("ix_hk_short_interest_trade_date", "trade_date"),
    comment="Hong Kong short positions (SFC weekly aggregated reportable short positions), one row per "
    "security and reporting date.",
)

crawl_state = sa.Table(
    "crawl_state",
    metadata,
    sa.Column("code", sa.String(32), nullable=False, comment="Full security code, e.g. US.AAPL."),
    sa.Column("market", sa.String(2), nullable=False, comment="Market of the code: 'US' or 'HK'."),
    sa.Column("newest_trade_date", sa.Date(), comment="Newest trade_date loaded for this code."),
    sa.Column("last_attempt_at", UtcDateTime(), comment="When a crawl of this code last started (UTC)."),
    sa.Column("last_success_at", UtcDateTime(), comment="When a crawl of this code last finished cleanly (UTC)."),
    sa.Column(
        "full_crawl_cursor",
        sa.Text(),
        comment="Page key to resume an interrupted full-history crawl from; NULL when none is in progress.",
    ),
    sa.Column("full_crawl_started_at", UtcDateTime(), comment="When the in-progress full crawl started (UTC)."),
    sa.Column("last_error", sa.Text(), comment="Message of the last failed crawl; cleared by a success."),
    sa.Column("last_error_at", UtcDateTime(), comment="When the last failed crawl failed (UTC)."),
    sa.Column("last_gateway", sa.String(255), comment="Gateway (host:port) that last loaded this code cleanly."),
    sa.PrimaryKeyConstraint("code", name="pk_crawl_state"),
    sa.CheckConstraint("market IN ('US', 'HK')", name="ck_crawl_state_market"),
    comment="Crawler bookkeeping per security: progress, resumable cursor and last error.",
)

# Kept by triggers on the data tables (migration 0003), never by the loader: short_interest_latest reads it.
short_interest_newest = sa.Table(
    "short_interest_newest",
    metadata,
    sa.Column("market", sa.String(2), nullable=False, comment="Market of the security: 'US' or 'HK'."),
    sa.Column("code", sa.String(32), nullable=False, comment="Full security code, e.g. US.AAPL or HK.00700."),
    sa.Column("trade_date", sa.Date(), nullable=False, comment="Trading day of the code's newest report."),
    sa.Column("short_shares", sa.BigInteger(), comment="Shares short: US shares_short, HK aggregated_short."),
    sa.Column("short_percent", sa.Double(), comment="Short position as a percentage (the number before the %)."),
    sa.Column("close_price", sa.Double(), comment="Closing price on trade_date, in the security's currency."),
    sa.Column("last_close_price", sa.Double(), comment="Closing price of the previous trading day."),
    sa.Column("updated_at", UtcDateTime(), nullable=False, comment="updated_at of the report's row (UTC)."),
    sa.PrimaryKeyConstraint("code", name="pk_short_interest_newest"),
    sa.CheckConstraint("market IN ('US', 'HK')", name="ck_short_interest_newest_market"),
    comment="Each security's newest report in short_interest_latest's columns, kept by triggers on the "
    "short-interest tables.",
)


def _history_table(data: sa.Table) -> sa.Table:
    """Every earlier version of `data`'s rows, kept by triggers (migration 0007): its columns but updated_at,
    with the interval the warehouse held the version."""
    copied = [c for c in data.columns if c.name != "updated_at"]
    return sa.Table(
        f"{data.name}_history",
        metadata,
        sa.Column(
            "version_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
            comment="Order in which versions were recorded.",
        ),
        *(sa.Column(c.name, c.type, nullable=c.nullable, comment=c.comment) for c in copied),
        sa.Column(
            "recorded_at",
            UtcDateTime(),
            nullable=False,
            comment="When the warehouse began to hold this version (the row's updated_at then, UTC).",
        ),
        sa.Column(
            "superseded_at",
            UtcDateTime(),
            nullable=False,
            comment="When this version stopped being current: replaced by an update, or removed (UTC).",
        ),
        sa.Column(
            "deleted",
            sa.Boolean(),
            nullable=False,
            comment="True when the row was removed (DELETE, TRUNCATE, or its code or trade_date changed) rather "
            "than replaced by new values.",
        ),
        sa.PrimaryKeyConstraint("version_id", name=f"pk_{data.name}_history"),
        sa.Index(f"ix_{data.name}_history_key", "code", "trade_date", "recorded_at"),
        # The newest reports as of a moment read the versions of their dates (migration 0010).
        sa.Index(f"ix_{data.name}_history_trade_date", "trade_date"),
        comment=f"Every earlier version of a {data.name} row, written by triggers whenever a value or the key "
        f"changes or the row is deleted; the current version is the row in {data.name}.",
    )


us_short_interest_history = _history_table(us_short_interest)
hk_short_interest_history = _history_table(hk_short_interest)


# The resolved watchlist (migration 0008), written by pipelines.universe.store; the views join it for `name`.
securities = sa.Table(
    "securities",
    metadata,
    sa.Column("code", sa.String(32), nullable=False, comment="Full security code, e.g. US.AAPL or HK.00700."),
    sa.Column("market", sa.String(2), nullable=False, comment="Market of the security: 'US' or 'HK'."),
    sa.Column("name", sa.String(200), comment="Name as OpenD lists it; NULL for a typed code it did not describe."),
    sa.Column("security_type", sa.String(16), comment="STOCK or ETF, as OpenD's SecurityType names it."),
    sa.Column("lot_size", sa.Integer(), comment="Shares per board lot."),
    sa.Column("listing_date", sa.Date(), comment="Listing date as OpenD gives it."),
    sa.Column("delisted", sa.Boolean(), nullable=False, server_default=sa.false(),
              comment="OpenD lists the security as delisted: its rows are kept, it is not refreshed."),
    sa.Column("sources", sa.JSON(), nullable=False,
              comment='The watchlist sources that named it: "codes", "group:NAME", "plate:CODE", "market:HK".'),
    sa.Column("in_watchlist", sa.Boolean(), nullable=False,
              comment="Whether the last resolution keeps it in the watchlist (listed, not excluded)."),
    sa.Column("joined_at", UtcDateTime(), nullable=False, comment="When it last joined the watchlist (UTC)."),
    sa.Column("left_at", UtcDateTime(), comment="When it left the watchlist (UTC); NULL while in it."),
    sa.Column("resolved_at", UtcDateTime(), nullable=False, comment="The last resolution that named it (UTC)."),
    sa.Column("empty_history_at", UtcDateTime(),
              comment="When a crawl last found no history for it (UTC): re-checked monthly, not weekly."),
    sa.PrimaryKeyConstraint("code", name="pk_securities"),
    sa.CheckConstraint("market IN ('US', 'HK')", name="ck_securities_market"),
    sa.Index("ix_securities_in_watchlist", "in_watchlist", "code"),
    comment="The resolved watchlist: every security its sources named, with names, kept when it leaves.",
)  # fmt: skip

DATA_TABLES: dict[Market, sa.Table] = {Market.US: us_short_interest, Market.HK: hk_short_interest}
HISTORY_TABLES: dict[Market, sa.Table] = {Market.US: us_short_interest_history, Market.HK: hk_short_interest_history}
KEY_COLUMNS = ("code", "trade_date")
# The columns each market's table holds the analyst views' short_shares and short_percent in.
SHARES_COLUMN: dict[Market, str] = {Market.US: "shares_short", Market.HK: "aggregated_short"}
PERCENT_COLUMN: dict[Market, str] = {Market.US: "short_percent", Market.HK: "aggregated_short_ratio"}
AUDIT_COLUMNS = ("first_loaded_at", "updated_at")
# The day the source published the report: set once, on insert, from the publication calendar; not a value.
PUBLISHED_ON = "published_on"


def table_for(market: Market) -> sa.Table:
    return DATA_TABLES[market]


def history_for(market: Market) -> sa.Table:
    return HISTORY_TABLES[market]


def value_columns(table: sa.Table) -> tuple[str, ...]:
    """Columns whose change counts as a revision of the row: everything but the key, the audit stamps and the
    publication day."""
    skipped = {*KEY_COLUMNS, *AUDIT_COLUMNS, PUBLISHED_ON}
    return tuple(c.name for c in table.columns if c.name not in skipped)

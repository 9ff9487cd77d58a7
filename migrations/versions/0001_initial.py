"""Initial warehouse: short-interest tables per market, crawl state, analyst views, read-only role.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01

This file is frozen history: it spells out every column instead of importing the current schema module,
so later changes to the code cannot rewrite what this revision did.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READER_ROLE = "shortinterest_reader"
_TZ = {"US": "America/New_York", "HK": "Asia/Hong_Kong"}
_EXAMPLE = {"US": "US.AAPL", "HK": "HK.00700"}
_CURRENCY = {"US": "USD", "HK": "HKD"}


def _common_head(market: str) -> list[sa.Column]:
    return [
        sa.Column(
            "code",
            sa.String(32),
            nullable=False,
            comment=f"Full security code with market prefix, e.g. {_EXAMPLE[market]}.",
        ),
        sa.Column(
            "trade_date",
            sa.Date(),
            nullable=False,
            comment=f"Trading day of the report, in the market's time zone ({_TZ[market]}).",
        ),
        sa.Column(
            "source_timestamp",
            sa.BigInteger(),
            nullable=False,
            comment="The gateway's timestamp of the trading day: Unix seconds at local midnight of trade_date.",
        ),
    ]


def _prices(market: str) -> list[sa.Column]:
    currency = _CURRENCY[market]
    return [
        sa.Column(
            "close_price",
            sa.Double(),
            comment=f"Closing price on trade_date, in the security's currency ({currency}).",
        ),
        sa.Column(
            "last_close_price",
            sa.Double(),
            comment=f"Closing price of the previous trading day, in the security's currency ({currency}).",
        ),
    ]


def _audit() -> list[sa.Column]:
    return [
        sa.Column(
            "first_loaded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
            comment="When this row was first loaded into the warehouse (UTC).",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
            comment="When a value of this row last changed (UTC); a re-load of identical data leaves it alone.",
        ),
    ]


_VIEWS: dict[str, str] = {
    "short_interest": """
        SELECT CAST('US' AS VARCHAR(2)) AS market, code, trade_date,
               shares_short AS short_shares, short_percent, close_price, last_close_price, updated_at
          FROM us_short_interest
        UNION ALL
        SELECT CAST('HK' AS VARCHAR(2)) AS market, code, trade_date,
               aggregated_short AS short_shares, aggregated_short_ratio AS short_percent,
               close_price, last_close_price, updated_at
          FROM hk_short_interest
    """,
    "short_interest_latest": """
        SELECT market, code, trade_date, short_shares, short_percent, close_price, last_close_price, updated_at
          FROM (SELECT s.*, ROW_NUMBER() OVER (PARTITION BY code ORDER BY trade_date DESC) AS recency
                  FROM short_interest s) ranked
         WHERE recency = 1
    """,
    "short_interest_changes": """
        SELECT market, code, trade_date, short_shares, short_percent,
               previous_trade_date, previous_short_shares,
               short_shares - previous_short_shares AS short_shares_change,
               CASE WHEN previous_short_shares = 0 THEN NULL
                    ELSE CAST(short_shares - previous_short_shares AS DOUBLE PRECISION) * 100
                         / previous_short_shares
               END AS short_shares_change_percent,
               close_price, last_close_price, updated_at
          FROM (SELECT s.*,
                       LAG(trade_date) OVER (PARTITION BY code ORDER BY trade_date) AS previous_trade_date,
                       LAG(short_shares) OVER (PARTITION BY code ORDER BY trade_date) AS previous_short_shares
                  FROM short_interest s) with_previous
    """,
}

_VIEW_COMMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "short_interest": (
        "Short interest of both markets in common columns; one row per security and report date.",
        {
            "market": "Market of the security: 'US' or 'HK'.",
            "code": "Full security code with market prefix, e.g. US.AAPL or HK.00700.",
            "trade_date": "Trading day of the report, in the market's time zone.",
            "short_shares": "Shares short: US shares_short, HK aggregated_short (shares).",
            "short_percent": "Short position as a percentage (the number before the % sign): US short_percent, "
            "HK aggregated_short_ratio.",
            "close_price": "Closing price on trade_date, in the security's currency.",
            "last_close_price": "Closing price of the previous trading day, in the security's currency.",
            "updated_at": "When a value of this row last changed (UTC).",
        },
    ),
    "short_interest_latest": (
        "The most recent report per security (columns as in short_interest).",
        {},
    ),
    "short_interest_changes": (
        "Each report next to the previous report of the same security, with the change in shares short.",
        {
            "previous_trade_date": "trade_date of the previous report of this security; NULL for the first.",
            "previous_short_shares": "short_shares of the previous report; NULL for the first.",
            "short_shares_change": "short_shares minus previous_short_shares (shares).",
            "short_shares_change_percent": "Change relative to previous_short_shares, as a percentage (the "
            "number before the % sign); NULL when the previous is 0 or unknown.",
        },
    ),
}


def upgrade() -> None:
    op.create_table(
        "us_short_interest",
        *_common_head("US"),
        sa.Column("shares_short", sa.BigInteger(), comment="Shares sold short and not yet covered (shares)."),
        sa.Column(
            "short_percent",
            sa.Double(),
            comment="Short interest as a percentage: the number before the % sign (12.34 means 12.34 %).",
        ),
        sa.Column("avg_daily_share_volume", sa.BigInteger(), comment="Average daily share volume (shares)."),
        sa.Column(
            "days_to_cover",
            sa.Double(),
            comment="Days to cover: shares_short / avg_daily_share_volume (days).",
        ),
        *_prices("US"),
        *_audit(),
        sa.PrimaryKeyConstraint("code", "trade_date", name="pk_us_short_interest"),
        sa.CheckConstraint("code LIKE 'US.%'", name="ck_us_short_interest_code_market"),
        sa.CheckConstraint("shares_short >= 0", name="ck_us_short_interest_shares_short_nonneg"),
        sa.CheckConstraint("avg_daily_share_volume >= 0", name="ck_us_short_interest_avg_volume_nonneg"),
        comment="US short interest (FINRA reports, twice a month), one row per security and settlement date.",
    )
    op.create_table(
        "hk_short_interest",
        *_common_head("HK"),
        sa.Column(
            "aggregated_short",
            sa.BigInteger(),
            comment="Aggregated reportable short position, open shares (shares).",
        ),
        sa.Column(
            "aggregated_short_ratio",
            sa.Double(),
            comment="Aggregated short position as a percentage of issued shares: the number before the % sign.",
        ),
        *_prices("HK"),
        *_audit(),
        sa.PrimaryKeyConstraint("code", "trade_date", name="pk_hk_short_interest"),
        sa.CheckConstraint("code LIKE 'HK.%'", name="ck_hk_short_interest_code_market"),
        sa.CheckConstraint("aggregated_short >= 0", name="ck_hk_short_interest_aggregated_short_nonneg"),
        comment="Hong Kong short positions (SFC weekly aggregated reportable short positions), one row per "
        "security and reporting date.",
    )
    op.create_table(
        "crawl_state",
        sa.Column("code", sa.String(32), nullable=False, comment="Full security code, e.g. US.AAPL."),
        sa.Column("market", sa.String(2), nullable=False, comment="Market of the code: 'US' or 'HK'."),
        sa.Column("newest_trade_date", sa.Date(), comment="Newest trade_date loaded for this code."),
        sa.Column(
            "last_attempt_at", sa.DateTime(timezone=True), comment="When a crawl of this code last started (UTC)."
        ),
        sa.Column(
            "last_success_at",
            sa.DateTime(timezone=True),
            comment="When a crawl of this code last finished cleanly (UTC).",
        ),
        sa.Column(
            "full_crawl_cursor",
            sa.Text(),
            comment="Page key to resume an interrupted full-history crawl from; NULL when none is in progress.",
        ),
        sa.Column(
            "full_crawl_started_at",
            sa.DateTime(timezone=True),
            comment="When the in-progress full crawl started (UTC).",
        ),
        sa.Column("last_error", sa.Text(), comment="Message of the last failed crawl; cleared by a success."),
        sa.Column("last_error_at", sa.DateTime(timezone=True), comment="When the last failed crawl failed (UTC)."),
        sa.PrimaryKeyConstraint("code", name="pk_crawl_state"),
        sa.CheckConstraint("market IN ('US', 'HK')", name="ck_crawl_state_market"),
        comment="Crawler bookkeeping per security: progress, resumable cursor and last error.",
    )
    for name, body in _VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {body}")
    if op.get_bind().dialect.name == "postgresql":
        _comment_views()
        _create_reader_role()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _revoke_reader_role()
    for name in reversed(_VIEWS):
        op.execute(f"DROP VIEW {name}")
    op.drop_table("crawl_state")
    op.drop_table("hk_short_interest")
    op.drop_table("us_short_interest")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _comment_views() -> None:
    base_columns = _VIEW_COMMENTS["short_interest"][1]
    for view, (comment, columns) in _VIEW_COMMENTS.items():
        op.execute(f"COMMENT ON VIEW {view} IS {_quote(comment)}")
        for column, text in {**base_columns, **columns}.items():
            op.execute(f"COMMENT ON COLUMN {view}.{column} IS {_quote(text)}")


def _create_reader_role() -> None:
    # Roles are cluster-wide: another database's migration may create it at the same moment, which
    # surfaces as duplicate_object or (mid-race) unique_violation. Either means it exists now.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN
                CREATE ROLE {READER_ROLE} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END
        $$
        """
    )
    op.execute(
        f"""
        DO $$
        BEGIN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO {READER_ROLE}', current_schema());
            EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO {READER_ROLE}', current_schema());
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO {READER_ROLE}',
                           current_schema());
        END
        $$
        """
    )


def _revoke_reader_role() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN
                EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE SELECT ON TABLES FROM {READER_ROLE}',
                               current_schema());
                EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM {READER_ROLE}', current_schema());
                EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {READER_ROLE}', current_schema());
            END IF;
        END
        $$
        """
    )

"""The securities table (the resolved universe, with names), and `name` in the analyst views.

Revision ID: 0008_securities
Revises: 0007_point_in_time

One row per security any resolution of the watchlist named: its market, name, type, lot size, listing date,
delisted flag, the sources that named it, and when it joined and left the watchlist. A security that leaves
keeps its row (and its short-interest rows); `in_watchlist` says whether it is loaded. `empty_history_at`
remembers a crawl that found no history, so such a code is re-checked monthly instead of weekly.

short_interest_latest and short_interest_changes gain `name`, as their last column (PostgreSQL replaces a view
in place only by appending columns, keeping its comments and grants), through a join on securities' key in
each market's branch, so filters on code and trade_date still reach the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.history import revision_module

revision = "0008_securities"
down_revision = "0007_point_in_time"
branch_labels = None
depends_on = None

_0001 = revision_module("0001_initial.py")
_0005 = revision_module("0005_bounded_previous_lookup.py")
_0003 = _0005._0003
READER_ROLE = _0003.READER_ROLE
NAME_COMMENT = "The security's name as OpenD lists it (from the securities table); NULL when not resolved."

_LATEST = (
    "SELECT " + ", ".join(f"n.{c}" for c in _0003._COLUMNS.split(", ")) + ", s.name "
    "FROM short_interest_newest n LEFT JOIN securities s ON s.code = n.code"
)
_SELECT_END = "t.updated_at\n"
if not _0005._CHANGES.count(_SELECT_END) == 1:  # pragma: no cover - 0005 is frozen
    raise RuntimeError("revision 0005's short_interest_changes is not the one this revision amends")
_CHANGES_POSTGRES = (
    _0005._CHANGES.replace(_SELECT_END, "t.updated_at, s.name\n") + "      LEFT JOIN securities s ON s.code = t.code\n"
)
_CHANGES_SQLITE = f"SELECT c.*, s.name FROM ({_0003._OLD_CHANGES}) c LEFT JOIN securities s ON s.code = c.code"


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "securities",
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
        sa.Column("joined_at", _utc(), nullable=False, comment="When it last joined the watchlist (UTC)."),
        sa.Column("left_at", _utc(), comment="When it left the watchlist (UTC); NULL while in it."),
        sa.Column("resolved_at", _utc(), nullable=False, comment="The last resolution that named it (UTC)."),
        sa.Column("empty_history_at", _utc(),
                  comment="When a crawl last found no history for it (UTC): re-checked monthly, not weekly."),
        sa.PrimaryKeyConstraint("code", name="pk_securities"),
        sa.CheckConstraint("market IN ('US', 'HK')", name="ck_securities_market"),
        comment="The resolved watchlist: every security its sources named, with names, kept when it leaves.",
    )  # fmt: skip
    op.create_index("ix_securities_in_watchlist", "securities", ["in_watchlist", "code"])
    _views(_LATEST, _CHANGES_POSTGRES if postgres else _CHANGES_SQLITE)
    if postgres:
        for view in ("short_interest_latest", "short_interest_changes"):
            op.execute(f"COMMENT ON COLUMN {view}.name IS {_0001._quote(NAME_COMMENT)}")
        _grant()


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # A column cannot leave a view in place: both are made anew, with their comments and grants.
    op.execute("DROP VIEW short_interest_changes")
    op.execute("DROP VIEW short_interest_latest")
    op.execute(f"CREATE VIEW short_interest_latest AS {_0003._LATEST}")
    changes = _0003._OLD_CHANGES
    if postgres:
        changes = "UNION ALL".join(_0005._CHANGES.format(**_0005._names(market)) for market in _0003._MARKETS)
    op.execute(f"CREATE VIEW short_interest_changes AS {changes}")
    if postgres:
        _0001._comment_views()
        _grant()
    op.drop_index("ix_securities_in_watchlist", table_name="securities")
    op.drop_table("securities")


def _views(latest: str, changes: str) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        changes = "UNION ALL".join(changes.format(**_0005._names(market)) for market in _0003._MARKETS)
    for name, body in (("short_interest_latest", latest), ("short_interest_changes", changes)):
        if postgres:
            op.execute(f"CREATE OR REPLACE VIEW {name} AS {body}")
        else:
            op.execute(f"DROP VIEW {name}")
            op.execute(f"CREATE VIEW {name} AS {body}")


def _grant() -> None:
    op.execute(
        f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN "
        f"GRANT SELECT ON securities, short_interest_latest, short_interest_changes TO {READER_ROLE}; "
        "END IF; END $$"
    )

"""Rate limiter reservations: the shared sliding window every loader books its requests in.

Revision ID: 0002_rate_limiter
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_rate_limiter"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_reservations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("bucket", sa.String(200), nullable=False),
        sa.Column("reserved_at", sa.Float(precision=53), nullable=False),
    )
    op.create_index(
        "ix_rate_limit_reservations_bucket_reserved_at", "rate_limit_reservations", ["bucket", "reserved_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_rate_limit_reservations_bucket_reserved_at", table_name="rate_limit_reservations")
    op.drop_table("rate_limit_reservations")

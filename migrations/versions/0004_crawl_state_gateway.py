"""Crawl state: which gateway last loaded each code, now that one load can use several.

Revision ID: 0004_crawl_state_gateway
Revises: 0003_fast_analyst_views
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_crawl_state_gateway"
down_revision = "0003_fast_analyst_views"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crawl_state") as batch:
        batch.add_column(
            sa.Column(
                "last_gateway",
                sa.String(255),
                comment="Gateway (host:port) that last loaded this code cleanly.",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("crawl_state") as batch:
        batch.drop_column("last_gateway")

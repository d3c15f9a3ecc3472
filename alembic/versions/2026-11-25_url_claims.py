"""url claims

Revision ID: 0005_url_claims
Revises: 0004_crawl_depth_queue
Create Date: 2026-11-25 08:31:14.515319
"""

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa

from alembic import op

revision: str = "0005_url_claims"
down_revision: str | None = "0004_crawl_depth_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("urls", sa.Column("claim_job_id", sa.BigInteger(), nullable=True))
    op.add_column("urls", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("urls", "lease_expires_at")
    op.drop_column("urls", "claim_job_id")

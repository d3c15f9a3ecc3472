"""urls list order index

Revision ID: 0008_urls_list_order
Revises: 0007_shares
Create Date: 2026-12-01 11:40:00

A project's URL list (newest first, ties by id) reads one page of an index instead of
sorting every URL of the project. Built concurrently: the table is live in production.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_urls_list_order"
down_revision: str | None = "0007_shares"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_urls_project_id_created_at"
            " ON urls (project_id, created_at DESC, id)"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_urls_project_id_created_at")

"""urls.chunk_count, kept by the database

Revision ID: 0009_urls_chunk_count
Revises: 0008_urls_list_order
Create Date: 2026-12-01 14:30:00

Project stats counted a project's chunks on every read: O(chunks), and while ingestion runs
(when the SPA polls) the new chunks are not all-visible yet, so the count reads their heap
pages. Each URL now carries its chunk count, and the stats sum it over the URLs they already
scan. bench/stats.py, 100,000 chunks on 10,000 URLs: 93-114 ms → 4-5 ms as ingestion leaves
the tables, 9 → 3.5 ms once vacuumed.

Statement-level triggers with transition tables keep the count: one UPDATE of the touched
URLs (by primary key: `= ANY(ARRAY(...))`, as a join on the transition table planned a
sequential scan of `urls`) per INSERT, COPY or DELETE statement on chunks, whoever runs it:
this version's writers, an older replica still running during a rollout, a psql session. A
cascade from a deleted URL or project finds its URL rows already gone and updates nothing.
Cost: ~1.5 ms of PostgreSQL CPU per ingested batch of 16 pages, 4% of the batch's chunk COPY
(bench/stats.py).

One transaction: the column (a default, no table rewrite), the triggers and the backfill,
with `urls` and then `chunks` locked first (the order every writer takes them, so no
deadlock): no chunk write falls between the backfill and the triggers. Writers and URL reads
wait for the backfill (seconds per million URLs); search keeps reading chunks.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009_urls_chunk_count"
down_revision: str | None = "0008_urls_list_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("LOCK TABLE urls IN ACCESS EXCLUSIVE MODE")
    op.execute("LOCK TABLE chunks IN SHARE ROW EXCLUSIVE MODE")
    op.add_column(
        "urls", sa.Column("chunk_count", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.execute(
        """
        CREATE FUNCTION urls_chunk_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE urls u
          SET chunk_count = u.chunk_count + (SELECT count(*) FROM new_chunks c
                                             WHERE c.url_id = u.id)
          WHERE u.id = ANY(ARRAY(SELECT DISTINCT url_id FROM new_chunks));
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION urls_chunk_count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE urls u
          SET chunk_count = u.chunk_count - (SELECT count(*) FROM old_chunks c
                                             WHERE c.url_id = u.id)
          WHERE u.id = ANY(ARRAY(SELECT DISTINCT url_id FROM old_chunks));
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER chunks_count_added AFTER INSERT ON chunks"
        " REFERENCING NEW TABLE AS new_chunks"
        " FOR EACH STATEMENT EXECUTE FUNCTION urls_chunk_count_added()"
    )
    op.execute(
        "CREATE TRIGGER chunks_count_removed AFTER DELETE ON chunks"
        " REFERENCING OLD TABLE AS old_chunks"
        " FOR EACH STATEMENT EXECUTE FUNCTION urls_chunk_count_removed()"
    )
    op.execute(
        """
        UPDATE urls u SET chunk_count = c.n
        FROM (SELECT url_id, count(*) AS n FROM chunks GROUP BY url_id) c
        WHERE u.id = c.url_id
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS chunks_count_removed ON chunks")
    op.execute("DROP TRIGGER IF EXISTS chunks_count_added ON chunks")
    op.execute("DROP FUNCTION IF EXISTS urls_chunk_count_removed()")
    op.execute("DROP FUNCTION IF EXISTS urls_chunk_count_added()")
    op.drop_column("urls", "chunk_count")

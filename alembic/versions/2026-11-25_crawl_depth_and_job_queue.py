"""crawl depth and the job queue (procrastinate's schema)

Revision ID: 0004_crawl_depth_queue
Revises: 0003_projects_urls_chunks
Create Date: 2026-11-25

procrastinate ships its schema as SQL; it is applied here so that migrations stay the
only source of the schema. A later procrastinate upgrade adds a migration that applies
the SQL files of procrastinate/sql/migrations/ for the versions in between.
"""

from collections.abc import Sequence
from importlib import resources

from alembic import op

revision: str = "0004_crawl_depth_queue"
down_revision: str | None = "0003_projects_urls_chunks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _run_script(sql: str) -> None:
    """Multi-statement SQL needs the simple query protocol: run it on the raw driver."""
    dbapi_connection = op.get_bind().connection.dbapi_connection
    dbapi_connection.run_async(lambda raw: raw.execute(sql))


def upgrade() -> None:
    import sqlalchemy as sa

    op.add_column("urls", sa.Column("crawl_depth", sa.Integer(), nullable=True))
    schema = (resources.files("procrastinate.sql") / "schema.sql").read_text(encoding="utf-8")
    _run_script(schema)


def downgrade() -> None:
    _run_script(
        """
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
            procrastinate_jobs, procrastinate_workers CASCADE;
        DO $$ DECLARE r record; BEGIN
          FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
                   WHERE p.proname LIKE 'procrastinate\\_%' LOOP
            EXECUTE 'DROP FUNCTION IF EXISTS ' || r.sig || ' CASCADE';
          END LOOP;
        END $$;
        DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
            procrastinate_job_status CASCADE;
        """
    )
    op.drop_column("urls", "crawl_depth")

"""Migrations are the only source of the schema: models and migrations must agree."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncConnection

from src.database import Base, head_revision, import_all_models, include_object


async def test_models_and_migrations_agree(connection: AsyncConnection) -> None:
    import_all_models()

    def diff(sync_conn):
        ctx = MigrationContext.configure(
            sync_conn,
            opts={"compare_type": True, "include_object": include_object},
        )
        return compare_metadata(ctx, Base.metadata)

    changes = await connection.run_sync(diff)
    assert changes == [], f"models and migrations disagree; run an autogenerate: {changes}"


async def test_database_is_at_head(connection: AsyncConnection) -> None:
    from sqlalchemy import text

    current = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    assert current == head_revision()

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


def in_scratch_database(database_url: str, scenario) -> None:
    """Run `scenario(engine)` against a new database of its own (migrated by the scenario
    itself), on an event loop of its own; the database is dropped afterwards."""
    import asyncio
    import concurrent.futures
    import uuid

    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    async def run() -> None:
        name = f"projex_migrations_{uuid.uuid4().hex[:8]}"
        admin = create_async_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
        db = create_async_engine(url, poolclass=NullPool)
        try:
            await scenario(db)
        finally:
            await db.dispose()
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE "{name}"'))
            await admin.dispose()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


async def insert_user_and_project(conn) -> tuple:
    from sqlalchemy import text

    user = await conn.scalar(
        text("INSERT INTO users (email, password_hash) VALUES ('m@example.com', 'x') RETURNING id")
    )
    project = await conn.scalar(
        text("INSERT INTO projects (owner_id, name, version) VALUES (:u, 'p', 1) RETURNING id"),
        {"u": user},
    )
    return user, project


def test_every_migration_goes_down_to_base_and_up_again_on_a_populated_database(
    database_url: str, engine
) -> None:
    """In a database of its own, with rows in every table the migrations create."""
    from sqlalchemy import text

    from src.database import downgrade_database, upgrade_database

    async def scenario(db) -> None:
        await upgrade_database(db)
        async with db.begin() as conn:
            _, project = await insert_user_and_project(conn)
            url_id = await conn.scalar(
                text(
                    "INSERT INTO urls (project_id, url) VALUES (:p, 'https://e.example/') RETURNING id"
                ),
                {"p": project},
            )
            chunk = await conn.scalar(
                text(
                    "INSERT INTO chunks (project_id, url_id, ordinal, text, headings, char_start, char_end,"
                    " token_count, content_hash) VALUES (:p, :u, 0, 'hello', '{}', 0, 5, 1, 'h') RETURNING id"
                ),
                {"p": project, "u": url_id},
            )
            await conn.execute(
                text(
                    "INSERT INTO embeddings (chunk_id, model, project_id, embedding) "
                    "VALUES (:c, 'hashing-v1-384', :p, CAST(:v AS vector))"
                ),
                {"c": chunk, "p": project, "v": "[" + ",".join(["0.1"] * 384) + "]"},
            )
            await conn.execute(
                text(
                    "INSERT INTO shares (project_id, name, token_hash, prefix, scopes) "
                    "VALUES (:p, 's', 'h', 'pjs_x', '{read}')"
                ),
                {"p": project},
            )
        await downgrade_database(db, "base")
        async with db.connect() as conn:
            left = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            )
        assert left == 0
        await upgrade_database(db)
        async with db.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM users")) == 0

    in_scratch_database(database_url, scenario)


def test_production_downgrade_needs_the_flag() -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "src.cli", "migrate", "--downgrade", "base"],
        env={
            **os.environ,
            "ENVIRONMENT": "production",
            "SECRET_KEY": "p" * 40,
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "without --allow-downgrade" in result.stderr


def test_chunk_count_is_backfilled_then_kept_by_the_database(database_url: str, engine) -> None:
    """0009 on a database with chunks: every URL's count is backfilled, then the triggers
    follow any writer (raw SQL here, the services in tests/chunks), cascades included."""
    from sqlalchemy import text

    from src.database import upgrade_database

    chunk_sql = text(
        "INSERT INTO chunks (project_id, url_id, ordinal, text, headings, char_start, char_end,"
        " token_count, content_hash) SELECT :p, :u, i, 'hello', '{}', 0, 5, 1, 'h'"
        " FROM generate_series(1, :n) i"
    )

    async def scenario(db) -> None:
        await upgrade_database(db, "0008_urls_list_order")
        async with db.begin() as conn:
            _, project = await insert_user_and_project(conn)
            urls = [
                await conn.scalar(
                    text("INSERT INTO urls (project_id, url) VALUES (:p, :url) RETURNING id"),
                    {"p": project, "url": f"https://e.example/{i}"},
                )
                for i in range(3)
            ]
            for url_id, n in zip(urls, (3, 1), strict=False):  # the third has none
                await conn.execute(chunk_sql, {"p": project, "u": url_id, "n": n})
        await upgrade_database(db)

        async def counts() -> list[int]:
            async with db.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT u.chunk_count, (SELECT count(*) FROM chunks c"
                        " WHERE c.url_id = u.id) FROM urls u WHERE u.id = ANY(:ids)"
                        " ORDER BY u.url"
                    ),
                    {"ids": urls},
                )
                pairs = rows.all()
            assert all(kept == actual for kept, actual in pairs), pairs
            return [kept for kept, _ in pairs]

        assert await counts() == [3, 1, 0]
        async with db.begin() as conn:  # rows for another URL, then a partial delete
            await conn.execute(chunk_sql, {"p": project, "u": urls[2], "n": 2})
            await conn.execute(
                text("DELETE FROM chunks WHERE url_id = :u AND ordinal > 1"), {"u": urls[0]}
            )
        assert await counts() == [1, 1, 2]
        async with db.begin() as conn:  # a cascade finds its URL gone: nothing to update
            await conn.execute(text("DELETE FROM urls WHERE id = :u"), {"u": urls[1]})
        assert await counts() == [1, 2]
        async with db.begin() as conn:
            await conn.execute(text("DELETE FROM projects WHERE id = :p"), {"p": project})
            assert await conn.scalar(text("SELECT count(*) FROM chunks")) == 0

    in_scratch_database(database_url, scenario)

"""`projex create-admin` against the real database, in a subprocess."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from src.users.models import User
from tests.factories import unique_email

pytestmark = pytest.mark.slow


def run_cli(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "src.cli", "create-admin", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DATABASE_URL": database_url},
    )


async def test_create_admin_creates_then_promotes(database_url: str, engine: AsyncEngine) -> None:
    email = unique_email("admin")
    maker = async_sessionmaker(engine, expire_on_commit=False)
    try:
        created = run_cli(
            database_url,
            "--email",
            email.upper(),
            "--password-stdin",
            stdin="a long admin password\n",
        )
        assert created.returncode == 0, created.stderr
        assert f"created admin {email}" in created.stderr
        async with maker() as s:
            user = await s.scalar(select(User).where(User.email == email))
            assert user.role == "admin" and user.password_hash.startswith("$argon2id$")
            user.role = "user"
            user.is_active = False
            await s.commit()
        promoted = run_cli(database_url, "--email", email, "--password-stdin", stdin="\n")
        assert promoted.returncode == 0 and "promoted admin" in promoted.stderr
        async with maker() as s:
            user = await s.scalar(select(User).where(User.email == email))
            assert user.role == "admin" and user.is_active
        weak = run_cli(database_url, "--email", unique_email(), "--password-stdin", stdin="short\n")
        assert weak.returncode == 2 and "at least 10 characters" in weak.stderr
        nopass = run_cli(database_url, "--email", unique_email(), "--password-stdin", stdin="\n")
        assert nopass.returncode == 2 and "password is needed" in nopass.stderr
    finally:
        async with maker() as s:
            await s.execute(delete(User).where(User.email == email))
            await s.commit()

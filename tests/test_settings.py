import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from src.config import DEFAULT_SECRET_KEY, Settings

STRONG = "s" * 48


def test_production_refuses_default_secret() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(ENVIRONMENT="production", DATABASE_URL="postgresql://u@h/db")


def test_production_refuses_embedded_database() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(ENVIRONMENT="production", SECRET_KEY=STRONG, DATABASE_URL="")


def test_production_accepts_real_settings() -> None:
    s = Settings(ENVIRONMENT="production", SECRET_KEY=STRONG, DATABASE_URL="postgresql://u@h/db")
    assert s.DATABASE_URL == "postgresql+asyncpg://u@h/db"


def test_short_secret_is_refused_everywhere() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(SECRET_KEY="short")


def test_cors_origins_accepts_comma_separated_list() -> None:
    s = Settings(CORS_ORIGINS="https://a.example, https://b.example")
    assert s.CORS_ORIGINS == ["https://a.example", "https://b.example"]


def test_non_postgres_url_is_refused() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(DATABASE_URL="mysql://u@h/db")


SERVE = ["serve", "--port", "1"]


@pytest.mark.parametrize(
    ("command", "env", "expected"),
    [
        (
            SERVE,
            {
                "ENVIRONMENT": "production",
                "SECRET_KEY": DEFAULT_SECRET_KEY,
                "DATABASE_URL": "postgresql://u@h/db",
            },
            "SECRET_KEY",
        ),
        (SERVE, {"ENVIRONMENT": "staging"}, "ENVIRONMENT"),
        (SERVE, {"MAX_BODY_BYTES": "lots"}, "MAX_BODY_BYTES"),
        (SERVE, {"FETCH_TIMEOUT_SECONDS": "-1"}, "FETCH_TIMEOUT_SECONDS"),  # a domain's setting
        (["worker"], {"WORKER_QUEUES": "ingestion,bogus"}, "WORKER_QUEUES"),
        (["worker"], {"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY"),
        (["worker"], {"ENVIRONMENT": "staging"}, "ENVIRONMENT"),
    ],
)
def test_cli_exits_with_one_clear_line(
    command: list[str], env: dict[str, str], expected: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "src.cli", *command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("projex: invalid settings:")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr

"""Global settings shared by every domain; domain knobs live in each domain's config.py."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SECRET_KEY = "dev-insecure-secret-key-change-me-0123456789"  # noqa: S105 (dev default)

ENV_FILE = ".env"


class ProjexSettings(BaseSettings):
    """Base for every settings class: `.env` + environment, unknown names ignored."""

    model_config = SettingsConfigDict(env_file=ENV_FILE, extra="ignore", case_sensitive=True)


def split_csv(value: object) -> object:
    """Accept `a,b,c` (or a JSON-less list) for list settings."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(ProjexSettings):
    ENVIRONMENT: Literal["development", "production", "test"] = "development"
    APP_NAME: str = "Projex"
    GIT_COMMIT: str | None = None
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    DATABASE_URL: str | None = None
    DATABASE_POOL_SIZE: int = Field(default=10, ge=1, le=200)
    DATABASE_MAX_OVERFLOW: int = Field(default=10, ge=0, le=200)
    DATABASE_POOL_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0, le=120)
    DATABASE_CONNECT_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0, le=60)
    EMBEDDED_DATA_DIR: Path = Path(".data/postgres")

    SECRET_KEY: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    CORS_ORIGINS: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:5173", "http://127.0.0.1:5173"]
    )
    SERVE_WITH_WORKER: bool = True
    METRICS_TOKEN: SecretStr | None = None  # set: GET /metrics needs `Bearer <token>`
    MAX_BODY_BYTES: int = Field(default=10 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024)
    TRUSTED_PROXIES: Annotated[list[str], NoDecode] = Field(default_factory=list)

    _split = field_validator("CORS_ORIGINS", "TRUSTED_PROXIES", mode="before")(split_csv)

    @field_validator("DATABASE_URL", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("DATABASE_URL")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("must be a postgresql:// or postgresql+asyncpg:// URL")
        return value

    @model_validator(mode="after")
    def _production_refuses_defaults(self) -> "Settings":
        secret = self.SECRET_KEY.get_secret_value()
        if len(secret.encode()) < 32:
            raise ValueError("SECRET_KEY must be at least 32 bytes")
        if self.ENVIRONMENT == "production":
            if secret == DEFAULT_SECRET_KEY:
                raise ValueError("SECRET_KEY: production refuses the development default")
            if self.DATABASE_URL is None:
                raise ValueError("DATABASE_URL: production refuses the embedded database")
        return self

    @property
    def embedded_database(self) -> bool:
        return self.DATABASE_URL is None


@lru_cache
def get_settings() -> Settings:
    return Settings()

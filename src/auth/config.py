from pydantic import Field

from src.config import ProjexSettings


class AuthSettings(ProjexSettings):
    ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(default=15, ge=1, le=24 * 60)
    REFRESH_TOKEN_EXPIRE_DAYS: int = Field(default=30, ge=1, le=365)
    JWT_ALGORITHM: str = "HS256"
    # argon2id; OWASP minimum is m=19 MiB, t=2, p=1: the floor enforced here.
    ARGON2_MEMORY_KIB: int = Field(default=65536, ge=19456)
    ARGON2_TIME_COST: int = Field(default=2, ge=2)
    ARGON2_PARALLELISM: int = Field(default=1, ge=1, le=16)
    LOGIN_MAX_FAILURES: int = Field(default=5, ge=1, le=100)
    LOGIN_CLIENT_MAX_FAILURES: int = Field(default=20, ge=1, le=10_000)
    LOGIN_WINDOW_SECONDS: int = Field(default=15 * 60, ge=10)
    LOGIN_LOCK_BASE_SECONDS: int = Field(default=30, ge=1)
    LOGIN_LOCK_MAX_SECONDS: int = Field(default=15 * 60, ge=1)
    API_KEY_LAST_USED_RESOLUTION_SECONDS: int = Field(default=60, ge=0)
    API_KEYS_PER_USER: int = Field(default=100, ge=1, le=10_000)


auth_settings = AuthSettings()

from pydantic import Field

from src.config import ProjexSettings


class SharesSettings(ProjexSettings):
    SHARE_RATE_LIMIT_PER_MINUTE: int = Field(default=120, ge=1, le=100_000)  # per token
    SHARE_CLIENT_RATE_LIMIT_PER_MINUTE: int = Field(default=300, ge=1, le=100_000)  # per address
    SHARE_USAGE_FLUSH_SECONDS: int = Field(default=30, ge=0, le=3600)
    SHARES_PER_PROJECT: int = Field(default=100, ge=1, le=10_000)


shares_settings = SharesSettings()

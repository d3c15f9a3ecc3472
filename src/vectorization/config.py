from typing import Literal

from pydantic import Field, SecretStr, field_validator

from src.config import ProjexSettings

ProviderName = Literal["hashing", "openai", "bedrock", "sentence-transformers"]


class VectorizationSettings(ProjexSettings):
    EMBEDDING_PROVIDER: ProviderName = "hashing"
    EMBEDDING_MODEL: str | None = None  # provider default when unset
    EMBEDDING_DIMENSIONS: int = Field(default=384, ge=2, le=4096)
    OPENAI_BASE_URL: str = "https://api.openai.com/v1"
    OPENAI_API_KEY: SecretStr | None = None
    EMBEDDING_BATCH_SIZE: int = Field(default=64, ge=1, le=2048)
    EMBEDDING_BATCH_TOKENS: int = Field(default=100_000, ge=100, le=1_000_000)
    EMBEDDING_MAX_RETRIES: int = Field(default=5, ge=0, le=20)
    EMBEDDING_TIMEOUT_SECONDS: float = Field(default=60.0, gt=0, le=600)
    # Recall@10 ≥ 0.95 on 100k × 384 needs ~800 (bench/search.py); lower it for latency.
    SEARCH_EF_SEARCH: int = Field(default=800, ge=10, le=1000)
    SEARCH_MAX_SCAN_TUPLES: int = Field(default=20_000, ge=100, le=1_000_000)
    VECTORS_MAX_PER_REQUEST: int = Field(default=10_000, ge=1, le=100_000)
    DOCUMENTS_MAX_PER_REQUEST: int = Field(default=500, ge=1, le=10_000)
    PUSH_MAX_BODY_BYTES: int = Field(default=128 * 1024 * 1024, ge=1024)

    @field_validator("EMBEDDING_MODEL", "OPENAI_API_KEY", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return None if value == "" else value


vectorization_settings = VectorizationSettings()

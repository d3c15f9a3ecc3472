from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from src.config import ProjexSettings, split_csv


class FetchSettings(ProjexSettings):
    FETCH_ALLOWED_NETWORKS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Ports besides 80/443, e.g. "8080" or "8000-8100".
    FETCH_ALLOWED_PORTS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    FETCH_TIMEOUT_SECONDS: float = Field(default=20.0, gt=0, le=300)
    FETCH_MAX_BYTES: int = Field(default=10 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    FETCH_RESPECT_ROBOTS: bool = True
    FETCH_MAX_REDIRECTS: int = Field(default=5, ge=0, le=10)
    FETCH_PER_HOST_CONCURRENCY: int = Field(default=4, ge=1, le=64)
    FETCH_USER_AGENT: str = "ProjexBot/0.1 (+https://github.com/projex; URL vectorization crawler)"
    ROBOTS_CACHE_SECONDS: int = Field(default=3600, ge=0)
    INGEST_MAX_ATTEMPTS: int = Field(default=5, ge=1, le=20)
    INGEST_RETRY_BASE_SECONDS: int = Field(default=2, ge=1, le=600)
    INGEST_BATCH_SIZE: int = Field(default=16, ge=1, le=200)
    INGEST_LEASE_SECONDS: int = Field(default=900, ge=30, le=24 * 3600)
    RECONCILE_STUCK_AFTER_SECONDS: int = Field(default=120, ge=1)

    _split = field_validator("FETCH_ALLOWED_NETWORKS", "FETCH_ALLOWED_PORTS", mode="before")(
        split_csv
    )

    def allowed_ports(self) -> set[int]:
        ports = {80, 443}
        for item in self.FETCH_ALLOWED_PORTS:
            low, _, high = item.partition("-")
            ports.update(range(int(low), int(high or low) + 1))
        return ports


fetch_settings = FetchSettings()

from typing import Literal

from src.schemas import ApiModel


class Liveness(ApiModel):
    status: Literal["ok"] = "ok"


class CheckResult(ApiModel):
    status: Literal["ok", "failed"]
    latency_ms: float
    detail: str | None = None


class Readiness(ApiModel):
    status: Literal["ok", "failed"]
    checks: dict[str, CheckResult]


class VersionRead(ApiModel):
    name: str
    version: str
    commit: str | None
    database: str
    pgvector: str | None
    migration: str | None

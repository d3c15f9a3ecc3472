from typing import Literal

from pydantic import BaseModel


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class CheckResult(BaseModel):
    status: Literal["ok", "failed"]
    latency_ms: float
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ok", "failed"]
    checks: dict[str, CheckResult]


class VersionRead(BaseModel):
    name: str
    version: str
    commit: str | None
    database: str
    pgvector: str | None
    migration: str | None

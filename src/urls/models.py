import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from src.database import Base
from src.models import Timestamps, UUIDPrimaryKey


class Crawl(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "crawls"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    start_url: Mapped[str | None] = mapped_column(Text)
    sitemap_url: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default=text("'queued'"))
    pages_seen: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    urls_added: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    duplicates: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    rejected: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Url(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "urls"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )
    url: Mapped[str] = mapped_column(Text, nullable=False)  # normalised
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=text("'pending'")
    )
    source: Mapped[str] = mapped_column(String(16), nullable=False, server_default=text("'api'"))
    crawl_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("crawls.id", ondelete="SET NULL"), index=True
    )
    crawl_depth: Mapped[int | None] = mapped_column(Integer)
    external_id: Mapped[str | None] = mapped_column(String(500))  # pushed documents/vectors
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    title: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    http_status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(200))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    snapshot_key: Mapped[str | None] = mapped_column(Text)
    text_key: Mapped[str | None] = mapped_column(Text)
    # How many chunks the page has: kept by statement triggers on `chunks` (migration 0009),
    # never written by the application, so project stats sum it instead of counting chunks.
    chunk_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ingested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Which job is processing the row, until when: one active ingestion per URL, and a
    # retried (stalled) job may take back its own rows.
    claim_job_id: Mapped[int | None] = mapped_column(BigInteger)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )

    __table_args__ = (
        UniqueConstraint("project_id", "url", name="uq_urls_project_id_url"),
        Index("ix_urls_project_id_status", "project_id", "status"),
        # The list's order (newest first, ties by id): a page is read, not sorted.
        Index("ix_urls_project_id_created_at", "project_id", text("created_at DESC"), "id"),
        Index("ix_urls_status_status_changed_at", "status", "status_changed_at"),
        Index(
            "uq_urls_project_id_external_id",
            "project_id",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
    )

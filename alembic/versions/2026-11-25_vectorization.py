"""vectorization

Revision ID: 0006_vectorization
Revises: 0005_url_claims
Create Date: 2026-11-25 08:46:50.100233
"""

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0006_vectorization"
down_revision: str | None = "0005_url_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vectorization_jobs",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("url_ids", sa.ARRAY(sa.Uuid()), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'queued'"), nullable=False
        ),
        sa.Column("total", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("done", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_vectorization_jobs_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_vectorization_jobs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vectorization_jobs")),
    )
    op.create_index(
        op.f("ix_vectorization_jobs_project_id"), "vectorization_jobs", ["project_id"], unique=False
    )
    op.create_table(
        "embeddings",
        sa.Column("chunk_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("embedding", pgvector.sqlalchemy.vector.VECTOR(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["chunk_id"],
            ["chunks.id"],
            name=op.f("fk_embeddings_chunk_id_chunks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_embeddings_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("chunk_id", "model", name=op.f("pk_embeddings")),
    )
    op.create_index(
        "ix_embeddings_project_id_model", "embeddings", ["project_id", "model"], unique=False
    )
    op.add_column(
        "chunks",
        sa.Column(
            "tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('english'::regconfig, text)", persisted=True),
            nullable=False,
        ),
    )
    op.create_index("ix_chunks_tsv", "chunks", ["tsv"], unique=False, postgresql_using="gin")
    op.add_column("projects", sa.Column("search_model", sa.String(length=200), nullable=True))
    # The default model's vector index; other (model, dimension) pairs get theirs on first use.
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_embeddings_hnsw_hashing_v1_384 ON embeddings "
        "USING hnsw ((embedding::vector(384)) vector_cosine_ops) "
        "WHERE model = 'hashing-v1-384'"
    )
    op.add_column("urls", sa.Column("external_id", sa.String(length=500), nullable=True))
    op.add_column(
        "urls", sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.create_index(
        "uq_urls_project_id_external_id",
        "urls",
        ["project_id", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_urls_project_id_external_id",
        table_name="urls",
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.drop_column("urls", "metadata")
    op.drop_column("urls", "external_id")
    op.drop_column("projects", "search_model")
    op.drop_index("ix_chunks_tsv", table_name="chunks", postgresql_using="gin")
    op.drop_column("chunks", "tsv")
    op.drop_index("ix_embeddings_project_id_model", table_name="embeddings")
    op.drop_table("embeddings")
    op.drop_index(op.f("ix_vectorization_jobs_project_id"), table_name="vectorization_jobs")
    op.drop_table("vectorization_jobs")

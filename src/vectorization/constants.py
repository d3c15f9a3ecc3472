from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobScope(StrEnum):
    STALE = "stale"  # chunks without a vector for the project's model
    ALL = "all"  # every chunk, re-embedded


class SearchMode(StrEnum):
    HYBRID = "hybrid"
    SEMANTIC = "semantic"
    FULLTEXT = "fulltext"


HNSW_INDEX_PREFIX = "ix_embeddings_hnsw_"
TEXT_SEARCH_CONFIG = "english"

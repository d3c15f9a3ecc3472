"""Semantic (pgvector HNSW), full-text (tsvector + GIN) and hybrid (weighted reciprocal rank
fusion) search, ranked and shaped in one SQL statement with the URL as JSON."""

import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.database import escape_like
from src.vectorization import service
from src.vectorization.config import vectorization_settings
from src.vectorization.constants import SearchMode
from src.vectorization.schemas import SearchFilters, SearchHit, SearchRequest, SearchResponse

# Natural-language questions: lexemes OR-ed (a page sharing most words still matches),
# ranked by cover density normalised to 0..1.
FT_QUERY = (
    "(SELECT CASE WHEN numnode(q) = 0 THEN q ELSE "
    "replace(q::text, ' & ', ' | ')::tsquery END "
    "FROM plainto_tsquery('english', :query) AS q)"
)


def _filters(filters: SearchFilters, params: dict[str, Any]) -> str:
    clauses = []
    if filters.url_ids:
        params["f_url_ids"] = filters.url_ids
        clauses.append("c.url_id = ANY(:f_url_ids)")
    if filters.url_prefix:
        params["f_prefix"] = escape_like(filters.url_prefix) + "%"
        clauses.append("u.url LIKE :f_prefix")
    if filters.metadata:
        params["f_meta"] = json.dumps(filters.metadata)
        clauses.append("u.metadata @> CAST(:f_meta AS jsonb)")
    return "".join(f" AND {c}" for c in clauses)


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _semantic_cte(dims: int, model: str, where: str, limit_param: str) -> str:
    # The model is inlined as a literal (it is one of ours, escaped) so that even a generic
    # plan of the prepared statement matches the partial HNSW index `WHERE model = '…'`.
    # Only integers and fixed fragments are interpolated; values are bound parameters.
    return f"""
      sem AS (
        SELECT c.id AS chunk_id,
               1 - (e.embedding::vector({dims}) <=> CAST(:qvec AS vector({dims}))) AS score,
               row_number() OVER (ORDER BY e.embedding::vector({dims})
                                  <=> CAST(:qvec AS vector({dims}))) AS rnk
        FROM (SELECT e.chunk_id, e.embedding FROM embeddings e
              JOIN chunks c ON c.id = e.chunk_id JOIN urls u ON u.id = c.url_id
              WHERE e.model = {_sql_literal(model)} AND e.project_id = :pid {where}
              ORDER BY e.embedding::vector({dims}) <=> CAST(:qvec AS vector({dims}))
              LIMIT :{limit_param}) e
        JOIN chunks c ON c.id = e.chunk_id)"""  # noqa: S608


def _fulltext_cte(where: str, limit_param: str) -> str:
    return f"""
      ftq AS (SELECT {FT_QUERY} AS tq),
      ft AS (
        SELECT c.id AS chunk_id, ts_rank_cd(c.tsv, ftq.tq, 32) AS score,
               row_number() OVER (ORDER BY ts_rank_cd(c.tsv, ftq.tq, 32) DESC, c.id) AS rnk
        FROM chunks c JOIN urls u ON u.id = c.url_id, ftq
        WHERE c.project_id = :pid AND c.tsv @@ ftq.tq {where}
        ORDER BY score DESC, c.id
        LIMIT :{limit_param})"""  # noqa: S608


SHAPE = """
    SELECT r.chunk_id, r.sem_score, r.ft_score, r.fused, c.text, c.headings,
           json_build_object('id', u.id, 'url', u.url, 'title', u.title) AS url
    FROM ranked r JOIN chunks c ON c.id = r.chunk_id JOIN urls u ON u.id = c.url_id
    ORDER BY r.fused DESC, r.chunk_id
    LIMIT :top_k OFFSET :offset
"""


async def prepare(
    *, project_id: uuid.UUID, project_settings: dict, search_model: str | None, data: SearchRequest
) -> tuple[str, dict[str, Any], list[str], str]:
    """(SQL, parameters, SET LOCAL statements, model) of one search: the API runs it, and the
    benchmark runs the very same statement straight on asyncpg."""
    params: dict[str, Any] = {
        "pid": project_id,
        "query": data.query,
        "top_k": data.top_k,
        "offset": data.offset,
    }
    where = _filters(data.filters, params)
    window = max(50, (data.top_k + data.offset) * 4)
    params["window"] = window if data.mode == SearchMode.HYBRID else data.top_k + data.offset
    model = search_model or service.provider_for(project_settings).model_id
    ctes: list[str] = []
    settings: list[str] = []
    if data.mode in (SearchMode.SEMANTIC, SearchMode.HYBRID):
        provider = service.provider_for_model(model, project_settings)
        (vector,) = await provider.embed([data.query])
        params["qvec"] = "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
        ctes.append(_semantic_cte(provider.dimensions, model, where, "window"))
        s = vectorization_settings
        # One round trip; transaction-local (like SET LOCAL).
        settings = [
            "SELECT set_config('hnsw.ef_search', "
            f"'{int(max(s.SEARCH_EF_SEARCH, window))}', true), "
            "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            f"set_config('hnsw.max_scan_tuples', '{int(s.SEARCH_MAX_SCAN_TUPLES)}', true)"
        ]
    if data.mode in (SearchMode.FULLTEXT, SearchMode.HYBRID):
        ctes.append(_fulltext_cte(where, "window"))
    if data.mode == SearchMode.SEMANTIC:
        ranked = (
            "ranked AS (SELECT chunk_id, score AS sem_score, NULL::float8 AS ft_score,"
            " score AS fused FROM sem)"
        )
    elif data.mode == SearchMode.FULLTEXT:
        ranked = (
            "ranked AS (SELECT chunk_id, NULL::float8 AS sem_score, score AS ft_score,"
            " score AS fused FROM ft)"
        )
    else:
        params.update({"ws": data.semantic_weight, "wf": data.fulltext_weight, "k": data.rrf_k})
        ranked = """ranked AS (
          SELECT coalesce(sem.chunk_id, ft.chunk_id) AS chunk_id, sem.score AS sem_score,
                 ft.score AS ft_score,
                 coalesce(CAST(:ws AS float8) / (:k + sem.rnk), 0)
                 + coalesce(CAST(:wf AS float8) / (:k + ft.rnk), 0) AS fused
          FROM sem FULL OUTER JOIN ft ON ft.chunk_id = sem.chunk_id)"""
    shape = SHAPE
    if data.min_score is not None:
        params["min_score"] = data.min_score
        shape = SHAPE.replace(
            "    ORDER BY r.fused", "    WHERE r.fused >= :min_score\n    ORDER BY r.fused"
        )
    return "WITH " + ",".join([*ctes, ranked]) + shape, params, settings, model


async def search(
    *,
    session: AsyncSession,
    project_id: uuid.UUID,
    project_settings: dict,
    search_model: str | None,
    data: SearchRequest,
) -> SearchResponse:
    sql, params, settings, model = await prepare(
        project_id=project_id,
        project_settings=project_settings,
        search_model=search_model,
        data=data,
    )
    for statement in settings:
        await session.execute(text(statement))
    rows = (await session.execute(text(sql), params)).all()
    items = [
        SearchHit(
            chunk_id=row.chunk_id,
            text=row.text,
            headings=row.headings,
            rank=data.offset + i + 1,
            scores={"semantic": row.sem_score, "fulltext": row.ft_score, "fused": row.fused},
            url=row.url,
        )
        for i, row in enumerate(rows)
    ]
    return SearchResponse(query=data.query, mode=data.mode, model=model, items=items)

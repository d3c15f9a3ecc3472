"""Share links: management by owners/editors, and the token-resolved read-only surface."""

import secrets
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from src.auth.utils import sha256_hex
from src.chunks import service as chunks_service
from src.chunks.schemas import ChunkListParams, ChunkRead
from src.pagination import LimitOffset, Page
from src.projects import service as projects_service
from src.projects.models import Project
from src.projects.schemas import UrlStatusCounts
from src.projects.service import ProjectAccess
from src.shares.config import shares_settings
from src.shares.constants import SHARE_TOKEN_PREFIX, ShareScope
from src.shares.exceptions import ShareNotFound, ShareRateLimited, TooManyShares
from src.shares.models import Share
from src.shares.schemas import (
    ShareCreate,
    ShareCreated,
    SharedProject,
    SharedStats,
    SharedUrl,
    SharedUrlParams,
    ShareRead,
)
from src.urls.constants import UrlStatus
from src.urls.models import Url


def _read(share: Share) -> ShareRead:
    return ShareRead(
        id=share.id,
        name=share.name,
        prefix=share.prefix,
        scopes=share.scopes,
        created_by=share.created_by,
        created_at=share.created_at,
        expires_at=share.expires_at,
        max_uses=share.max_uses,
        use_count=share.use_count,
        last_used_at=share.last_used_at,
        revoked=share.revoked_at is not None,
    )


async def create_share(
    *, session: AsyncSession, access: ProjectAccess, data: ShareCreate
) -> ShareCreated:
    count = await session.scalar(
        select(func.count())
        .select_from(Share)
        .where(Share.project_id == access.project.id, Share.revoked_at.is_(None))
    )
    if (count or 0) >= shares_settings.SHARES_PER_PROJECT:
        raise TooManyShares()
    token = SHARE_TOKEN_PREFIX + secrets.token_urlsafe(24)  # 192 bits
    share = Share(
        project_id=access.project.id,
        name=data.name,
        token_hash=sha256_hex(token),
        prefix=token[:12],
        scopes=[s.value for s in data.scopes],
        created_by=access.principal.user_id,
        expires_at=data.expires_at,
        max_uses=data.max_uses,
    )
    session.add(share)
    await session.flush()
    await session.refresh(share)
    return ShareCreated(**_read(share).model_dump(), token=token)


async def list_shares(
    *, session: AsyncSession, access: ProjectAccess, page: LimitOffset
) -> Page[ShareRead]:
    where = Share.project_id == access.project.id
    total = await session.scalar(select(func.count()).select_from(Share).where(where))
    rows = await session.scalars(
        select(Share)
        .where(where)
        .order_by(Share.created_at.desc(), Share.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return Page(
        items=[_read(s) for s in rows], total=total or 0, limit=page.limit, offset=page.offset
    )


async def revoke_share(
    *, session: AsyncSession, access: ProjectAccess, share_id: uuid.UUID
) -> None:
    revoked = await session.scalar(
        update(Share)
        .where(
            Share.id == share_id, Share.project_id == access.project.id, Share.revoked_at.is_(None)
        )
        .values(revoked_at=func.now())
        .returning(Share.id)
    )
    if revoked is None:
        raise ShareNotFound()


# --- the shared surface ----------------------------------------------------------------------


@dataclass(frozen=True)
class ShareAccess:
    share_id: uuid.UUID
    project_id: uuid.UUID
    scopes: frozenset[str]
    expires_at: datetime | None
    project_settings: dict
    search_model: str | None

    def allows(self, scope: ShareScope) -> bool:
        return scope.value in self.scopes


class _Window:
    """Fixed one-minute windows per key, in this process (each API replica counts alone)."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, int]] = {}

    def hit(self, key: str, limit: int) -> int | None:
        minute = int(time.time() // 60)
        window, count = self.counts.get(key, (minute, 0))
        if window != minute:
            window, count = minute, 0
        count += 1
        self.counts[key] = (window, count)
        if len(self.counts) > 50_000:  # forget old windows
            self.counts = {k: v for k, v in self.counts.items() if v[0] == minute}
        if count > limit:
            return 60 - int(time.time() % 60)
        return None


_limits = _Window()
_pending_uses: dict[uuid.UUID, int] = defaultdict(int)
_last_flush: dict[uuid.UUID, float] = {}


def check_rate(*, token_hash: str, client: str) -> None:
    for key, limit in (
        (f"t:{token_hash}", shares_settings.SHARE_RATE_LIMIT_PER_MINUTE),
        (f"c:{client}", shares_settings.SHARE_CLIENT_RATE_LIMIT_PER_MINUTE),
    ):
        wait = _limits.hit(key, limit)
        if wait is not None:
            raise ShareRateLimited(
                f"Rate limit reached; retry in {wait} seconds.",
                headers={"Retry-After": str(max(1, wait))},
            )


_RESOLVE = (
    select(
        Share.id,
        Share.project_id,
        Share.scopes,
        Share.expires_at,
        Share.max_uses,
        Project.settings,
        Project.search_model,
    )
    .join(Project, Project.id == Share.project_id)
    .where(
        Share.token_hash == text(":h"),
        Project.deleted_at.is_(None),
        projects_service.shares_active_filter(),
    )
)


async def resolve(*, session: AsyncSession, token: str, client: str) -> ShareAccess:
    """The share for a token, or 404 `share_not_found` whatever the reason. The token is only
    ever compared as its SHA-256 through a unique index: no timing oracle on its value."""
    token_hash = sha256_hex(token)
    check_rate(token_hash=token_hash, client=client)
    row = (await session.execute(_RESOLVE, {"h": token_hash})).one_or_none()
    if row is None:
        raise ShareNotFound()
    if row.max_uses is not None:
        # Counted links are exact: one atomic increment, refused once exhausted.
        counted = await session.scalar(
            update(Share)
            .where(Share.id == row.id, Share.use_count < Share.max_uses)
            .values(use_count=Share.use_count + 1, last_used_at=func.now())
            .returning(Share.id)
        )
        if counted is None:
            raise ShareNotFound()
    else:
        await _count_use(session, row.id)
    return ShareAccess(
        share_id=row.id,
        project_id=row.project_id,
        scopes=frozenset(row.scopes),
        expires_at=row.expires_at,
        project_settings=row.settings,
        search_model=row.search_model,
    )


async def _count_use(session: AsyncSession, share_id: uuid.UUID) -> None:
    """Hot links: uses are added up in memory and written at most every
    SHARE_USAGE_FLUSH_SECONDS per link (a crash loses at most that much of the count)."""
    _pending_uses[share_id] += 1
    now = time.monotonic()
    if now - _last_flush.get(share_id, 0.0) < shares_settings.SHARE_USAGE_FLUSH_SECONDS:
        return
    pending = _pending_uses.pop(share_id, 0)
    _last_flush[share_id] = now
    await session.execute(
        update(Share)
        .where(Share.id == share_id)
        .values(use_count=Share.use_count + pending, last_used_at=func.now())
    )


async def shared_project(*, session: AsyncSession, share: ShareAccess) -> SharedProject:
    counts = [func.count().filter(Url.status == s.value).label(s.value) for s in UrlStatus]
    row = (
        await session.execute(
            select(
                Project.name,
                Project.description,
                *counts,
                func.max(Url.ingested_at).label("last"),
                func.coalesce(func.sum(Url.chunk_count), 0).label("chunks"),  # kept per URL
            )
            .select_from(Project)
            .outerjoin(Url, Url.project_id == Project.id)
            .where(Project.id == share.project_id)
            .group_by(Project.id)
        )
    ).one()
    return SharedProject(
        name=row.name,
        description=row.description,
        scopes=sorted(share.scopes),
        expires_at=share.expires_at,
        stats=SharedStats(
            urls=UrlStatusCounts(**{s.value: getattr(row, s.value) for s in UrlStatus}),
            chunks=row.chunks,
            last_ingested_at=row.last,
        ),
    )


async def shared_urls(
    *, session: AsyncSession, share: ShareAccess, params: SharedUrlParams, page: LimitOffset
) -> Page[SharedUrl]:
    filters = [Url.project_id == share.project_id]
    if params.status:
        filters.append(Url.status == params.status)
    total = await session.scalar(select(func.count()).select_from(Url).where(*filters))
    rows = await session.execute(
        select(Url.id, Url.url, Url.title, Url.status, Url.fetched_at)
        .where(*filters)
        .order_by(Url.created_at.desc(), Url.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return Page(
        items=[SharedUrl.model_validate(r, from_attributes=True) for r in rows],
        total=total or 0,
        limit=page.limit,
        offset=page.offset,
    )


async def shared_chunks(
    *, session: AsyncSession, share: ShareAccess, params: ChunkListParams, page: LimitOffset
) -> Page[ChunkRead]:
    return await chunks_service.list_chunks(
        session=session, project_id=share.project_id, params=params, page=page
    )

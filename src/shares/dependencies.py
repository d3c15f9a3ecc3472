from typing import Annotated

from fastapi import Depends, Request

from src.auth.dependencies import ClientAddress
from src.auth.exceptions import ScopeMissing
from src.database import SessionDep
from src.shares import service
from src.shares.constants import HEADER_TOKEN_PLACEHOLDER, ShareScope
from src.shares.exceptions import ShareNotFound
from src.shares.service import ShareAccess


def share_token(token: str, request: Request) -> str:
    """The token from the path, or (path `_`) from `Authorization: Share <token>`."""
    if token != HEADER_TOKEN_PLACEHOLDER:
        return token
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "share" or not value.strip():
        raise ShareNotFound()
    return value.strip()


async def valid_share(
    token: Annotated[str, Depends(share_token)], session: SessionDep, client: ClientAddress
) -> ShareAccess:
    return await service.resolve(session=session, token=token, client=client)


ValidShare = Annotated[ShareAccess, Depends(valid_share)]


async def searchable_share(share: ValidShare) -> ShareAccess:
    if not share.allows(ShareScope.SEARCH):
        raise ScopeMissing("this share link does not allow search")
    return share


SearchableShare = Annotated[ShareAccess, Depends(searchable_share)]

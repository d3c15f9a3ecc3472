import uuid
from typing import Annotated

from fastapi import Depends

from src.auth.dependencies import AdminUser
from src.database import SessionDep
from src.users import service
from src.users.exceptions import UserNotFound
from src.users.models import User


async def valid_user(user_id: uuid.UUID, _: AdminUser, session: SessionDep) -> User:
    user = await service.get_by_id(session=session, user_id=user_id)
    if user is None:
        raise UserNotFound()
    return user


UserById = Annotated[User, Depends(valid_user)]

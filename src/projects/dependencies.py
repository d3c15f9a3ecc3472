"""Valid-resource dependencies: the project lookup and the permission check, once, in SQL.

Non-members (and API keys bound to another project) get 404; members whose role is too
low get 403; API keys need the route's scope (403 `scope_missing`).
"""

import re
import uuid
from typing import Annotated

from fastapi import Depends, Header

from src.auth.constants import Scope
from src.auth.dependencies import CurrentPrincipal
from src.auth.exceptions import ScopeMissing
from src.database import SessionDep
from src.exceptions import PreconditionFailed
from src.projects import service
from src.projects.constants import ROLE_RANK, ProjectRole
from src.projects.exceptions import ProjectRoleInsufficient
from src.projects.service import ProjectAccess


def project_access(min_role: ProjectRole, scope: Scope):
    async def _access(
        project_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
    ) -> ProjectAccess:
        access = await service.require_visible(
            session=session, principal=principal, project_id=project_id
        )
        if not principal.has_scope(scope.value):
            raise ScopeMissing(f"missing scope: {scope.value}")
        if ROLE_RANK[access.role] < ROLE_RANK[min_role]:
            raise ProjectRoleInsufficient(f"needs the {min_role.value} role or higher")
        return access

    return Depends(_access)


ReadableProject = Annotated[ProjectAccess, project_access(ProjectRole.VIEWER, Scope.PROJECTS_READ)]
EditableProject = Annotated[ProjectAccess, project_access(ProjectRole.EDITOR, Scope.PROJECTS_WRITE)]
OwnedProject = Annotated[ProjectAccess, project_access(ProjectRole.OWNER, Scope.PROJECTS_WRITE)]
MemberOfProject = Annotated[ProjectAccess, project_access(ProjectRole.VIEWER, Scope.PROJECTS_WRITE)]

_ETAG = re.compile(r'^(?:W/)?"(\d{1,12})"$')


def etag_for(version: int) -> str:
    return f'"{version}"'


def expected_version(
    if_match: Annotated[str | None, Header(alias="If-Match", max_length=200)] = None,
) -> int | None:
    """The version an `If-Match` names; None when absent or `*` (the write is accepted)."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.match(if_match.strip())
    if match is None:
        raise PreconditionFailed('If-Match must be an ETag from GET, e.g. "3".')
    return int(match.group(1))


ExpectedVersion = Annotated[int | None, Depends(expected_version)]

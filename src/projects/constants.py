from enum import StrEnum


class ProjectRole(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


ROLE_RANK = {ProjectRole.VIEWER: 1, ProjectRole.EDITOR: 2, ProjectRole.OWNER: 3}

MEMBER_ROLES = (ProjectRole.VIEWER, ProjectRole.EDITOR)  # the owner is set at creation

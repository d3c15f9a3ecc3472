from typing import Annotated

from src.auth.constants import Scope
from src.projects.constants import ProjectRole
from src.projects.dependencies import project_access
from src.projects.service import ProjectAccess

# Editors (and owners) with the `urls:write` scope add, refetch and delete URLs and crawls.
UrlEditableProject = Annotated[ProjectAccess, project_access(ProjectRole.EDITOR, Scope.URLS_WRITE)]

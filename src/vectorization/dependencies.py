from typing import Annotated

from src.auth.constants import Scope
from src.projects.constants import ProjectRole
from src.projects.dependencies import project_access
from src.projects.service import ProjectAccess

# Push endpoints and vectorize jobs: editors and owners, API keys with `vectorization:write`.
VectorizableProject = Annotated[
    ProjectAccess, project_access(ProjectRole.EDITOR, Scope.VECTORIZATION_WRITE)
]
# Search: any member (viewers included), API keys with `search`.
SearchableProject = Annotated[ProjectAccess, project_access(ProjectRole.VIEWER, Scope.SEARCH)]

from src.exceptions import AppError, Conflict, NotFound, PermissionDenied


class ProjectNotFound(NotFound):
    code = "project_not_found"
    title = "Project not found"


class ProjectNameTaken(Conflict):
    code = "project_name_taken"
    title = "You already have a project with this name"


class ProjectRoleInsufficient(PermissionDenied):
    code = "project_role_insufficient"
    title = "Your role in this project does not allow this"


class MemberNotFound(NotFound):
    code = "member_not_found"
    title = "Member not found"


class MemberAlreadyExists(Conflict):
    code = "member_exists"
    title = "This user is already a member"


class CannotRemoveOwner(Conflict):
    code = "cannot_remove_owner"
    title = "The owner cannot be removed from the project"


class TooManyMembers(Conflict):
    code = "too_many_members"
    title = "Member limit reached"


class InvalidProjectSettings(AppError):
    status_code = 422
    code = "invalid_settings"
    title = "The resulting project settings are invalid"


class BoundApiKeyCannotCreate(PermissionDenied):
    code = "api_key_bound_to_project"
    title = "An API key bound to a project cannot create projects"

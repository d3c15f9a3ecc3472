from src.exceptions import AppError, Conflict, NotFound, PermissionDenied


class EmailTaken(Conflict):
    code = "email_taken"
    title = "An account with this email already exists"


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "User not found"


class AdminRequired(PermissionDenied):
    code = "admin_required"
    title = "Administrator role required"


class InvalidCurrentPassword(AppError):
    status_code = 403
    code = "invalid_current_password"
    title = "The current password is incorrect"


class CannotModifySelf(Conflict):
    code = "cannot_modify_self"
    title = "Administrators cannot demote or deactivate themselves"

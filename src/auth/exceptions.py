from src.exceptions import AppError, NotAuthenticated, NotFound, PermissionDenied, RateLimited


class InvalidCredentials(AppError):
    status_code = 401
    code = "invalid_credentials"
    title = "Incorrect email or password"
    headers = {"WWW-Authenticate": "Bearer"}
    commit_transaction = True  # the failed-login counter must persist


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    title = "Invalid or expired credentials"
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class InvalidRefreshToken(AppError):
    status_code = 401
    code = "invalid_refresh_token"
    title = "Invalid, expired or revoked refresh token"
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class RefreshTokenReused(AppError):
    status_code = 401
    code = "refresh_token_reused"
    title = "Refresh token already used; the session family has been revoked"
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    commit_transaction = True  # the family revocation must persist


class TooManyLoginAttempts(RateLimited):
    code = "too_many_login_attempts"
    title = "Too many failed login attempts"


class ScopeMissing(PermissionDenied):
    code = "scope_missing"
    title = "The API key lacks a required scope"


class UserTokenRequired(PermissionDenied):
    code = "user_token_required"
    title = "This endpoint needs a user access token, not an API key"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "API key not found"


class TooManyApiKeys(AppError):
    status_code = 409
    code = "too_many_api_keys"
    title = "API key limit reached"

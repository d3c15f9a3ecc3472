import uuid
from datetime import datetime
from typing import Annotated, Self

from pydantic import AfterValidator, ConfigDict, EmailStr, Field, model_validator

from src.schemas import ApiModel
from src.users.constants import PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS, Role


def _normalise_email(value: str) -> str:
    return value.strip().lower()


def _password_policy(value: str) -> str:
    if len(value) < PASSWORD_MIN_CHARS:
        raise ValueError(f"password must be at least {PASSWORD_MIN_CHARS} characters")
    if len(value.encode()) > PASSWORD_MAX_BYTES:
        raise ValueError(f"password must be at most {PASSWORD_MAX_BYTES} bytes")
    return value


Email = Annotated[EmailStr, AfterValidator(_normalise_email)]
Password = Annotated[str, AfterValidator(_password_policy)]
FullName = Annotated[str, Field(min_length=1, max_length=200)]


def _password_is_not_email(password: str, email: str | None) -> None:
    if email and password.strip().lower() == email.lower():
        raise ValueError("password must not be the email address")


class UserCreate(ApiModel):
    email: Email
    password: Password
    full_name: FullName | None = None

    @model_validator(mode="after")
    def _not_email(self) -> Self:
        _password_is_not_email(self.password, self.email)
        return self


class UserRead(ApiModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str | None
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime


class UserUpdateMe(ApiModel):
    """Profile changes; an email change needs `current_password`."""

    full_name: FullName | None = None
    email: Email | None = None
    current_password: Annotated[str, Field(max_length=PASSWORD_MAX_BYTES)] | None = None

    @model_validator(mode="after")
    def _password_for_email(self) -> Self:
        if self.email is not None and not self.current_password:
            raise ValueError("current_password is required to change the email")
        return self


class PasswordChange(ApiModel):
    current_password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_BYTES)]
    new_password: Password


class UserAdminUpdate(ApiModel):
    role: Role | None = None
    is_active: bool | None = None
    full_name: FullName | None = None


class UserListParams(ApiModel):
    q: Annotated[str | None, Field(max_length=200)] = None
    role: Role | None = None
    is_active: bool | None = None

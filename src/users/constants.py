from enum import StrEnum


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_BYTES = 1024

from pydantic import Field

from src.config import ProjexSettings


class ProjectsSettings(ProjexSettings):
    PROJECT_PURGE_AFTER_HOURS: int = Field(default=72, ge=0, le=24 * 365)
    PROJECT_MEMBERS_MAX: int = Field(default=200, ge=1, le=10_000)


projects_settings = ProjectsSettings()

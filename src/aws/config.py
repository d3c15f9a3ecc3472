from pydantic import Field, field_validator

from src.config import ProjexSettings


class AwsSettings(ProjexSettings):
    STORAGE_URL: str = "file://.data/objects"
    S3_ENDPOINT_URL: str | None = None
    AWS_REGION: str = "us-east-1"
    S3_PRESIGN_SECONDS: int = Field(default=300, ge=10, le=3600)
    BEDROCK_REGION: str | None = None

    @field_validator("STORAGE_URL")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("file://", "s3://")):
            raise ValueError("must start with file:// or s3://")
        if value.startswith("s3://") and not value[5:].split("/", 1)[0]:
            raise ValueError("s3:// URL needs a bucket: s3://bucket/prefix")
        return value

    @field_validator("S3_ENDPOINT_URL", "BEDROCK_REGION", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return None if value == "" else value


aws_settings = AwsSettings()

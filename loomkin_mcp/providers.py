"""OpenAI-compatible inference endpoints from `[provider.endpoints]`: model discovery and one completion.

Model ids are `provider:model` as in Loomkin (`ollama:qwen3:8b`, `vllm:meta-llama/Llama-3.1-8B`).
Auth headers follow the seed's conventions per backend: vLLM `x-api-key: <key>`; Ollama
`Authorization: Bearer <key or "ollama">`; SGLang, LM Studio, Exo and LiteLLM `Bearer <key>`
when a key is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import LoomkinError
from .config import ProviderEndpoint

DEFAULT_TIMEOUT_SECONDS = 10.0


class ProviderError(LoomkinError):
    """An endpoint could not be reached or answered something unusable."""


def split_model_id(model_id: str) -> tuple[str, str]:
    """`ollama:qwen3:8b` -> ("ollama", "qwen3:8b"): the provider is up to the first colon."""
    provider, _, model = model_id.partition(":")
    return provider, model


@dataclass(frozen=True)
class ProviderClient:
    name: str
    endpoint: ProviderEndpoint
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @property
    def headers(self) -> dict[str, str]:
        key = self.endpoint.auth_key.get_secret_value() if self.endpoint.auth_key else None
        if self.name == "vllm":
            return {"x-api-key": key} if key else {}
        if self.name == "ollama":
            return {"Authorization": f"Bearer {key or 'ollama'}"}
        return {"Authorization": f"Bearer {key}"} if key else {}

    def list_models(self) -> list[str]:
        """Model ids the endpoint serves (`GET {url}/models`)."""
        data = self._request("GET", "/models")
        try:
            return [str(item["id"]) for item in data["data"]]
        except (KeyError, TypeError):
            raise ProviderError(
                f"{self.name} at {self.endpoint.url} did not answer /models with a model list."
            ) from None

    def complete(self, model: str, prompt: str, max_tokens: int = 60) -> str:
        """One chat completion (`POST {url}/chat/completions`): the assistant's text."""
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        data = self._request("POST", "/chat/completions", body)
        try:
            return str(data["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError):
            raise ProviderError(f"{self.name} at {self.endpoint.url} answered without a completion.") from None

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import httpx2

        url = self.endpoint.url.rstrip("/") + path
        try:
            response = httpx2.request(method, url, json=body, headers=self.headers, timeout=self.timeout)
        except httpx2.HTTPError as exc:
            raise ProviderError(f"{self.name} at {self.endpoint.url} could not be reached ({exc}).") from None
        if response.status_code in (401, 403):
            raise ProviderError(f"{self.name} at {self.endpoint.url} refused the key (HTTP {response.status_code}).")
        if response.status_code >= 400:
            raise ProviderError(f"{self.name} at {url} answered HTTP {response.status_code}.")
        try:
            return response.json()
        except ValueError:
            raise ProviderError(f"{self.name} at {url} did not answer JSON.") from None

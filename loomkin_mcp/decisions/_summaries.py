"""One-line commit summaries from the weak model (`[model].weak`): optional, never an error.

First choice is the client's own model through MCP sampling (when a connected client offers
it); then a `[provider.endpoints]` OpenAI-compatible endpoint named by the weak model's
`provider:` prefix, with the seed's auth-header conventions.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..config import ProviderEndpoint, Settings

logger = logging.getLogger("loomkin_mcp.decisions")

Sampler = Callable[[str, str], Awaitable[str | None]]
"""(prompt, model hint) -> the client's model's answer, or None when no client can sample."""

_TIMEOUT_SECONDS = 10.0
_MAX_TOKENS = 60


def prompt_for(subject: str, files: list[str]) -> str:
    changed = ", ".join(files[:30]) or "no files listed"
    return (
        "Summarise this git commit in one plain sentence of at most 15 words, without a trailing period.\n"
        f"Message: {subject}\nFiles: {changed}"
    )


def auth_headers(backend: str, endpoint: ProviderEndpoint) -> dict[str, str]:
    """The seed's conventions: vLLM `x-api-key`; Ollama a Bearer key or "ollama"; the rest Bearer when keyed."""
    key = endpoint.auth_key.get_secret_value() if endpoint.auth_key else None
    if backend == "vllm":
        return {"x-api-key": key} if key else {}
    if backend == "ollama":
        return {"Authorization": f"Bearer {key or 'ollama'}"}
    return {"Authorization": f"Bearer {key}"} if key else {}


def from_endpoint(settings: Settings, prompt: str) -> str | None:
    """Ask the weak model's provider endpoint, when `[provider.endpoints]` has it; None otherwise."""
    provider, _, model = settings.config.model.weak.partition(":")
    endpoint = settings.config.provider.endpoints.get(provider)
    if endpoint is None or not model:
        return None
    import httpx2

    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": _MAX_TOKENS,
        "temperature": 0,
    }
    try:
        response = httpx2.post(
            endpoint.url.rstrip("/") + "/chat/completions",
            json=body,
            headers=auth_headers(provider, endpoint),
            timeout=_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        return clean(response.json()["choices"][0]["message"]["content"])
    except Exception as exc:  # noqa: BLE001 - a summary is a nicety: no summary, no error
        logger.info("no commit summary from %s: %s", provider, exc)
        return None


def clean(text: str | None) -> str | None:
    if not text:
        return None
    line = " ".join(text.split())[:200].rstrip(".")
    return line or None

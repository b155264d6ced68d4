"""One-line commit summaries from the weak model (`[model].weak`): optional, never an error.

First choice is the client's own model through MCP sampling (when a connected client offers
it); then a `[provider.endpoints]` OpenAI-compatible endpoint named by the weak model's
`provider:` prefix (see `loomkin_mcp.providers`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ..config import LoomkinConfig

logger = logging.getLogger("loomkin_mcp.decisions")

Sampler = Callable[[str, str], Awaitable[str | None]]
"""(prompt, model hint) -> the client's model's answer, or None when no client can sample."""

_MAX_TOKENS = 60


def prompt_for(subject: str, files: list[str]) -> str:
    changed = ", ".join(files[:30]) or "no files listed"
    return (
        "Summarise this git commit in one plain sentence of at most 15 words, without a trailing period.\n"
        f"Message: {subject}\nFiles: {changed}"
    )


def from_endpoint(config: LoomkinConfig, prompt: str) -> str | None:
    """Ask the weak model's provider endpoint, when `[provider.endpoints]` has it; None otherwise."""
    from ..providers import ProviderClient, ProviderError, split_model_id

    provider, model = split_model_id(config.model.weak)
    endpoint = config.provider.endpoints.get(provider)
    if endpoint is None or not model:
        return None
    try:
        return clean(ProviderClient(provider, endpoint).complete(model, prompt, _MAX_TOKENS))
    except ProviderError as exc:  # a summary is a nicety: no summary, no error
        logger.info("no commit summary: %s", exc)
        return None


def clean(text: str | None) -> str | None:
    if not text:
        return None
    line = " ".join(text.split())[:200].rstrip(".")
    return line or None

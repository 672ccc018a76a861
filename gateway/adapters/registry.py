"""Adapters by (caller's API, provider's wire). A new API pair: one file, one line here."""

from __future__ import annotations

from gateway.adapters.base import Adapter
from gateway.adapters.openai_chat import OpenAIChatAdapter
from gateway.adapters.openai_embeddings import OpenAIEmbeddingsAdapter

ADAPTERS: dict[tuple[str, str], Adapter] = {
    ("chat", "openai"): OpenAIChatAdapter(),
    ("embeddings", "openai"): OpenAIEmbeddingsAdapter(),
}

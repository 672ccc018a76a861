"""Adapters by (caller's API, provider's wire). A new API pair: one file, one line here."""

from __future__ import annotations

from gateway.adapters.anthropic_chat import AnthropicChatAdapter
from gateway.adapters.anthropic_messages import AnthropicMessagesAdapter
from gateway.adapters.base import Adapter
from gateway.adapters.messages_via_openai import MessagesViaOpenAIAdapter
from gateway.adapters.openai_chat import OpenAIChatAdapter
from gateway.adapters.openai_embeddings import OpenAIEmbeddingsAdapter
from gateway.adapters.openai_responses import OpenAIResponsesAdapter

ADAPTERS: dict[tuple[str, str], Adapter] = {
    ("chat", "openai"): OpenAIChatAdapter(),
    ("embeddings", "openai"): OpenAIEmbeddingsAdapter(),
    ("responses", "openai"): OpenAIResponsesAdapter(),
    ("chat", "anthropic"): AnthropicChatAdapter(),
    ("messages", "anthropic"): AnthropicMessagesAdapter(),
    ("messages", "openai"): MessagesViaOpenAIAdapter(),
}

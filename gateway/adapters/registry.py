"""Adapters by (caller's API, provider's wire). A new API pair: one file, one line here."""

from __future__ import annotations

from gateway.adapters.base import Adapter
from gateway.adapters.chat_anthropic import ChatAnthropic
from gateway.adapters.chat_bedrock import ChatBedrock
from gateway.adapters.chat_gemini import ChatGemini
from gateway.adapters.chat_openai import ChatOpenAI
from gateway.adapters.completions_openai import CompletionsOpenAI
from gateway.adapters.count_tokens_anthropic import CountTokensAnthropic
from gateway.adapters.embeddings_openai import EmbeddingsOpenAI
from gateway.adapters.messages_anthropic import MessagesAnthropic
from gateway.adapters.messages_bedrock import MessagesBedrock
from gateway.adapters.messages_gemini import MessagesGemini
from gateway.adapters.messages_openai import MessagesOpenAI
from gateway.adapters.moderations_openai import ModerationsOpenAI
from gateway.adapters.responses_openai import ResponsesOpenAI

ADAPTERS: dict[tuple[str, str], Adapter] = {
    ("chat", "openai"): ChatOpenAI(),
    ("embeddings", "openai"): EmbeddingsOpenAI(),
    ("responses", "openai"): ResponsesOpenAI(),
    ("chat", "anthropic"): ChatAnthropic(),
    ("messages", "anthropic"): MessagesAnthropic(),
    ("messages", "openai"): MessagesOpenAI(),
    ("chat", "bedrock"): ChatBedrock(),
    ("messages", "bedrock"): MessagesBedrock(),
    ("chat", "gemini"): ChatGemini(),
    ("messages", "gemini"): MessagesGemini(),
    ("completions", "openai"): CompletionsOpenAI(),
    ("moderations", "openai"): ModerationsOpenAI(),
    ("count_tokens", "anthropic"): CountTokensAnthropic(),
}


def adapter_for(api: str, wire: str) -> Adapter | None:
    return ADAPTERS.get((api, wire))

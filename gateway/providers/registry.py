"""Provider types by the `type` key of `[providers.NAME]`. A new provider: one file, one line here."""

from __future__ import annotations

from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.azure import AzureOpenAIProvider
from gateway.providers.base import Provider
from gateway.providers.bedrock import BedrockProvider
from gateway.providers.gemini import GeminiProvider
from gateway.providers.mock import MockProvider
from gateway.providers.openai import OpenAIProvider
from gateway.providers.presets import PRESETS
from gateway.providers.vertex import VertexProvider
from gateway.providers.vllm import VLLMProvider

PROVIDERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "mock": MockProvider,
    "anthropic": AnthropicProvider,
    "azure": AzureOpenAIProvider,
    "vllm": VLLMProvider,
    "bedrock": BedrockProvider,
    "gemini": GeminiProvider,
    "vertex": VertexProvider,
    **PRESETS,
}

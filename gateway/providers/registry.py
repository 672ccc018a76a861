"""Provider types by the `type` key of `[providers.NAME]`. A new provider: one file, one line here."""

from __future__ import annotations

from gateway.providers.base import Provider
from gateway.providers.mock import MockProvider
from gateway.providers.openai import OpenAIProvider

PROVIDERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "mock": MockProvider,
}

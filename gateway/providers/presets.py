"""Presets for OpenAI-compatible providers people use: each is the OpenAI provider with its base URL,
the APIs it serves, and its quirks. Each preset's `type` is its name:

    [providers.mistral]
    type = "mistral"                   # base_url defaults to https://api.mistral.ai/v1
    api_key_env = "MISTRAL_API_KEY"

Quirks are what a provider rejects or names differently in OpenAI's request body; they are rewritten
before the body goes upstream (`Provider.shape_body`), so only a preset that has quirks parses the body
once more. Answers need no preset code: the chat decoder reads the variants of the usage object
(`x_groq.usage`, DeepSeek's `prompt_cache_hit_tokens`). Prices of their common models are in the
default price table (gateway/pricing.py).

| type | base URL | APIs | quirks rewritten |
|---|---|---|---|
| mistral | https://api.mistral.ai/v1 | chat, embeddings | `max_completion_tokens` -> `max_tokens`, `seed` -> `random_seed`, `tool_choice: "required"` -> `"any"`; `stream_options`, `user`, `logit_bias`, `store`, `metadata` dropped (rejected with 422) |
| groq | https://api.groq.com/openai/v1 | chat | `logit_bias`, `logprobs`, `top_logprobs`, `store`, `metadata` dropped (rejected); usage read from `x_groq.usage` |
| together | https://api.together.xyz/v1 | chat, completions, embeddings | none |
| fireworks | https://api.fireworks.ai/inference/v1 | chat, completions, embeddings | `store`, `metadata` dropped |
| deepseek | https://api.deepseek.com/v1 | chat, completions | `store`, `metadata` dropped; cache hits read from `prompt_cache_hit_tokens` |
| openrouter | https://openrouter.ai/api/v1 | chat, completions | `app_url` / `app_name` options sent as `HTTP-Referer` / `X-Title` |
| ollama | http://127.0.0.1:11434/v1 | chat, completions, embeddings | no key needed |
"""

from __future__ import annotations

from typing import ClassVar

import orjson

from gateway.providers.base import ProviderOptions
from gateway.providers.openai import OpenAIProvider


class _Preset(OpenAIProvider):
    # Top-level request fields the provider rejects (dropped) or names differently (renamed).
    drop: ClassVar[frozenset[str]] = frozenset()
    rename: ClassVar[dict[str, str]] = {}
    tool_choice: ClassVar[dict[str, str]] = {}  # string tool_choice values it names differently

    def __init_subclass__(cls, **kw: object) -> None:
        super().__init_subclass__(**kw)
        cls.reshapes = bool(cls.drop or cls.rename or cls.tool_choice)

    def shape_body(self, api: str, body: bytes) -> bytes:
        if api != "chat":
            return body
        data = orjson.loads(body)
        changed = False
        for name in self.drop & data.keys():
            del data[name]
            changed = True
        for old, new in self.rename.items():
            if old in data:
                value = data.pop(old)
                data.setdefault(new, value)
                changed = True
        choice = data.get("tool_choice")
        if isinstance(choice, str) and choice in self.tool_choice:
            data["tool_choice"] = self.tool_choice[choice]
            changed = True
        return orjson.dumps(data) if changed else body


_OPENAI_ONLY = frozenset({"store", "metadata"})


class MistralProvider(_Preset):
    default_base_url = "https://api.mistral.ai/v1"
    apis = frozenset({"chat", "embeddings"})
    drop = _OPENAI_ONLY | {"stream_options", "user", "logit_bias"}  # Mistral sends usage on its last chunk
    rename = {"max_completion_tokens": "max_tokens", "seed": "random_seed"}
    tool_choice = {"required": "any"}


class GroqProvider(_Preset):
    default_base_url = "https://api.groq.com/openai/v1"
    apis = frozenset({"chat"})
    drop = _OPENAI_ONLY | {"logit_bias", "logprobs", "top_logprobs"}


class TogetherProvider(_Preset):
    default_base_url = "https://api.together.xyz/v1"
    apis = frozenset({"chat", "completions", "embeddings"})


class FireworksProvider(_Preset):
    default_base_url = "https://api.fireworks.ai/inference/v1"
    apis = frozenset({"chat", "completions", "embeddings"})
    drop = _OPENAI_ONLY


class DeepSeekProvider(_Preset):
    default_base_url = "https://api.deepseek.com/v1"
    apis = frozenset({"chat", "completions"})
    drop = _OPENAI_ONLY


class OpenRouterOptions(ProviderOptions):
    app_url: str | None = None  # sent as HTTP-Referer: OpenRouter's attribution of the calling app
    app_name: str | None = None  # sent as X-Title


class OpenRouterProvider(_Preset):
    Options = OpenRouterOptions
    default_base_url = "https://openrouter.ai/api/v1"
    apis = frozenset({"chat", "completions"})

    def auth_headers(self) -> dict[str, str]:
        opts: OpenRouterOptions = self.options  # type: ignore[assignment]
        headers = super().auth_headers()
        if opts.app_url:
            headers["http-referer"] = opts.app_url
        if opts.app_name:
            headers["x-title"] = opts.app_name
        return headers


class OllamaProvider(_Preset):
    default_base_url = "http://127.0.0.1:11434/v1"
    apis = frozenset({"chat", "completions", "embeddings"})


PRESETS: dict[str, type[OpenAIProvider]] = {
    "mistral": MistralProvider,
    "groq": GroqProvider,
    "together": TogetherProvider,
    "fireworks": FireworksProvider,
    "deepseek": DeepSeekProvider,
    "openrouter": OpenRouterProvider,
    "ollama": OllamaProvider,
}

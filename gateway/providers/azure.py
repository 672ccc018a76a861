"""Azure OpenAI: OpenAI's wire behind per-deployment URLs, an `api-key` header and an api-version.

The target's `model` is the Azure deployment name: `{base_url}/openai/deployments/{model}/chat/completions
?api-version=...`, where base_url is the resource endpoint (https://NAME.openai.azure.com).
"""

from __future__ import annotations

from urllib.parse import quote

from gateway.providers.base import Provider, ProviderOptions


class AzureOptions(ProviderOptions):
    api_version: str = "2024-10-21"


class AzureOpenAIProvider(Provider):
    wire = "openai"
    Options = AzureOptions
    apis = frozenset({"chat", "embeddings"})
    _paths = {"chat": "/chat/completions", "embeddings": "/embeddings"}

    def endpoint(self, api: str, model: str, stream: bool) -> str:
        opts: AzureOptions = self.options  # type: ignore[assignment]
        return (f"{self.base_url}/openai/deployments/{quote(model, safe='')}{self._paths[api]}"
                f"?api-version={quote(opts.api_version, safe='')}")

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self.api_key} if self.api_key else {}

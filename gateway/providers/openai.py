"""OpenAI, and any server that speaks OpenAI's API (vLLM, Ollama, LM Studio, ...)."""

from __future__ import annotations

from gateway.providers.base import Provider


class OpenAIProvider(Provider):
    wire = "openai"
    default_base_url = "https://api.openai.com/v1"
    apis = frozenset({"chat", "embeddings", "responses", "completions", "moderations"})
    _paths = {"chat": "/chat/completions", "embeddings": "/embeddings", "responses": "/responses",
              "completions": "/completions", "moderations": "/moderations"}

    def endpoint(self, api: str, model: str, stream: bool) -> str:
        return self.base_url + self._paths[api]

    def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

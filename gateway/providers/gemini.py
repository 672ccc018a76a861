"""Google's Gemini API (generativelanguage.googleapis.com): `generateContent`, and
`streamGenerateContent?alt=sse` for streams, with the API key in `x-goog-api-key`.

The wire is Gemini's own (`wire = "gemini"`): chat and Messages callers reach it through the
translating adapters (gateway/adapters/*_gemini.py). The target's `model` is the model name
(`gemini-2.5-flash`, with or without the `models/` prefix). Vertex AI speaks the same wire on its own
URLs with OAuth tokens: `vertex.py`.

    [providers.google]
    type = "gemini"
    api_key_env = "GEMINI_API_KEY"
"""

from __future__ import annotations

from urllib.parse import quote

from gateway.errors import GatewayError
from gateway.providers.base import Provider
from gateway.translate.upstream_errors import gemini_error_to_gateway


class GeminiProvider(Provider):
    wire = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    apis = frozenset({"generate_content"})

    def model_path(self, model: str) -> str:
        return "/models/" + quote(model.removeprefix("models/"), safe="")

    def endpoint(self, api: str, model: str, stream: bool) -> str:
        action = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
        return self.base_url + self.model_path(model) + action

    def auth_headers(self) -> dict[str, str]:
        # In a header, never the `?key=` query parameter, which ends up in access logs.
        return {"x-goog-api-key": self.api_key} if self.api_key else {}

    def map_error(self, status: int, body: bytes) -> GatewayError:
        return gemini_error_to_gateway(status, body)

"""Anthropic's Messages API (api.anthropic.com, or any server that speaks its wire)."""

from __future__ import annotations

from gateway.providers.base import Provider, ProviderOptions


class AnthropicOptions(ProviderOptions):
    # The API version every request names; Anthropic keeps old versions stable, so it is pinned.
    anthropic_version: str = "2023-06-01"
    # Beta features to enable, sent as `anthropic-beta` (comma-separated on the wire).
    betas: list[str] = []


class AnthropicProvider(Provider):
    wire = "anthropic"
    Options = AnthropicOptions
    default_base_url = "https://api.anthropic.com/v1"
    apis = frozenset({"messages", "count_tokens"})

    def endpoint(self, api: str, model: str, stream: bool) -> str:
        return self.base_url + ("/messages/count_tokens" if api == "count_tokens" else "/messages")

    def auth_headers(self) -> dict[str, str]:
        opts: AnthropicOptions = self.options  # type: ignore[assignment]
        headers = {"anthropic-version": opts.anthropic_version}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        if opts.betas:
            headers["anthropic-beta"] = ",".join(opts.betas)
        return headers

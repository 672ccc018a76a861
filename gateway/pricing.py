"""Model prices in USD per million tokens, and the cost of one request's usage.

Defaults cover common OpenAI, Anthropic and Google Gemini models (list prices, standard tier); a `[pricing.MODEL]`
table overrides or adds one (`input`, `output`, `cached_input`), and `[pricing."*"]` prices every
model not otherwise known. A dated or suffixed name (`gpt-4o-2024-08-06`, `openai/gpt-4o`,
`claude-sonnet-4-20250514`) uses the longest known name it starts with, at a `-`, `:` or `@`.
A model with no price costs 0.0, so a USD budget over an alias that can reach one is a config
error (`gateway.limits.worst_case`); `Pricing.known` tells.

Usage follows OpenAI's convention: `cached_tokens` is the part of `input_tokens` read from the
prompt cache, billed at `cached_input` instead of `input`; `cache_write_tokens` is the part written to
it, billed at `cache_write` (Anthropic: 1.25x input for the default 5-minute cache; OpenAI, DeepSeek and
Gemini's implicit caching charge nothing extra, so `cache_write` = `input`). Reasoning tokens are part of
`output_tokens` and billed as output, as every provider invoices them.

Prices are the providers' published standard (non-batch, non-priority) list prices per million tokens,
as of 2026-12: openai.com/api/pricing, anthropic.com/pricing (cache write 1.25x, read 0.1x input),
mistral.ai/pricing, groq.com/pricing, together.ai/pricing, fireworks.ai/pricing, api-docs.deepseek.com
/quick_start/pricing (cache hit price as `cached_input`). OpenRouter names (`vendor/model`) fall back
to the model's own price.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.validate import ConfigError, Strict, validate
from gateway.context import Usage


@dataclass(slots=True, frozen=True)
class Price:
    input: float
    output: float
    cached_input: float
    cache_write: float


def _p(i: float, o: float, c: float | None = None, w: float | None = None) -> Price:
    return Price(i, o, i if c is None else c, i if w is None else w)


def _anthropic(i: float, o: float) -> Price:
    """Anthropic's prompt cache: reads at 0.1x input, 5-minute writes at 1.25x input."""
    return Price(i, o, round(i * 0.1, 6), round(i * 1.25, 6))


DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI
    "gpt-5": _p(1.25, 10.0, 0.125),
    "gpt-5-mini": _p(0.25, 2.0, 0.025),
    "gpt-5-nano": _p(0.05, 0.40, 0.005),
    "gpt-4.1": _p(2.0, 8.0, 0.50),
    "gpt-4.1-mini": _p(0.40, 1.60, 0.10),
    "gpt-4.1-nano": _p(0.10, 0.40, 0.025),
    "gpt-4o": _p(2.50, 10.0, 1.25),
    "gpt-4o-mini": _p(0.15, 0.60, 0.075),
    "chatgpt-4o-latest": _p(5.0, 15.0),
    "gpt-4-turbo": _p(10.0, 30.0),
    "gpt-4": _p(30.0, 60.0),
    "gpt-3.5-turbo": _p(0.50, 1.50),
    "o1": _p(15.0, 60.0, 7.50),
    "o1-mini": _p(1.10, 4.40, 0.55),
    "o3": _p(2.0, 8.0, 0.50),
    "o3-mini": _p(1.10, 4.40, 0.55),
    "o4-mini": _p(1.10, 4.40, 0.275),
    "text-embedding-3-small": _p(0.02, 0.0),
    "text-embedding-3-large": _p(0.13, 0.0),
    "text-embedding-ada-002": _p(0.10, 0.0),
    # Anthropic (cache reads 0.1x, 5-minute cache writes 1.25x input)
    "claude-opus-4-5": _anthropic(5.0, 25.0),
    "claude-opus-4-1": _anthropic(15.0, 75.0),
    "claude-opus-4": _anthropic(15.0, 75.0),
    "claude-sonnet-4-5": _anthropic(3.0, 15.0),
    "claude-sonnet-4": _anthropic(3.0, 15.0),
    "claude-haiku-4-5": _anthropic(1.0, 5.0),
    "claude-3-7-sonnet": _anthropic(3.0, 15.0),
    "claude-3-5-sonnet": _anthropic(3.0, 15.0),
    "claude-3-5-haiku": _anthropic(0.80, 4.0),
    "claude-3-opus": _anthropic(15.0, 75.0),
    "claude-3-haiku": Price(0.25, 1.25, 0.03, 0.30),  # its published cache prices are rounded
    # AWS Bedrock, on-demand in us-east-1 (https://aws.amazon.com/bedrock/pricing/), by model id; an
    # inference profile (`us.`, `eu.`, `global.` ...) prices as its model. Claude on Bedrock is Anthropic's
    # list price (cache read 0.1x, cache write 1.25x input); regional endpoints of Claude 4.5 models cost 10%
    # more, which a `[pricing."MODEL_ID"]` table states. Nova: cache read 0.25x input.
    "anthropic.claude-opus-4-5": _anthropic(5.0, 25.0),
    "anthropic.claude-opus-4-1": _anthropic(15.0, 75.0),
    "anthropic.claude-opus-4": _anthropic(15.0, 75.0),
    "anthropic.claude-sonnet-4-5": _anthropic(3.0, 15.0),
    "anthropic.claude-sonnet-4": _anthropic(3.0, 15.0),
    "anthropic.claude-haiku-4-5": _anthropic(1.0, 5.0),
    "anthropic.claude-3-7-sonnet": _anthropic(3.0, 15.0),
    "anthropic.claude-3-5-sonnet": _anthropic(3.0, 15.0),
    "anthropic.claude-3-5-haiku": _anthropic(0.80, 4.0),
    "anthropic.claude-3-opus": _p(15.0, 75.0),
    "anthropic.claude-3-haiku": _p(0.25, 1.25),
    "amazon.nova-premier": _p(2.50, 12.50),
    "amazon.nova-pro": _p(0.80, 3.20, 0.20),
    "amazon.nova-lite": _p(0.06, 0.24, 0.015),
    "amazon.nova-micro": _p(0.035, 0.14, 0.00875),
    "meta.llama3-3-70b-instruct": _p(0.72, 0.72),
    "meta.llama3-1-70b-instruct": _p(0.72, 0.72),
    "meta.llama3-1-8b-instruct": _p(0.22, 0.22),
    "mistral.mistral-large-2402": _p(4.0, 12.0),
    # Google Gemini (Gemini API and Vertex AI list prices, standard paid tier, text/image/video input,
    # https://ai.google.dev/gemini-api/docs/pricing and https://cloud.google.com/vertex-ai/generative-ai/pricing;
    # cached_input = a context-cache read, 10% of input from the 2.5 models on). Thinking tokens are billed
    # as output. Pro models charge more for prompts over 200k tokens (2.5 Pro: 2.50 / 15.00, 3.x Pro:
    # 4.00 / 18.00): these are the <= 200k prices, as one price per model is all a table row holds.
    "gemini-3.1-pro": _p(2.00, 12.00, 0.20),
    "gemini-3-pro": _p(2.00, 12.00, 0.20),
    "gemini-3-flash": _p(0.50, 3.00, 0.05),
    "gemini-3.1-flash-lite": _p(0.25, 1.50, 0.025),
    "gemini-2.5-pro": _p(1.25, 10.0, 0.125),
    "gemini-2.5-flash": _p(0.30, 2.50, 0.03),
    "gemini-2.5-flash-lite": _p(0.10, 0.40, 0.01),
    "gemini-2.0-flash": _p(0.10, 0.40, 0.025),
    "gemini-2.0-flash-lite": _p(0.075, 0.30),
    # Mistral (mistral.ai/pricing)
    "mistral-large": _p(2.0, 6.0),
    "mistral-medium": _p(0.40, 2.0),
    "mistral-small": _p(0.10, 0.30),
    "codestral": _p(0.30, 0.90),
    "ministral-8b": _p(0.10, 0.10),
    "ministral-3b": _p(0.04, 0.04),
    "open-mistral-nemo": _p(0.15, 0.15),
    "mistral-embed": _p(0.10, 0.0),
    # Groq (groq.com/pricing)
    "llama-3.3-70b-versatile": _p(0.59, 0.79),
    "llama-3.1-8b-instant": _p(0.05, 0.08),
    "openai/gpt-oss-120b": _p(0.15, 0.75),
    "openai/gpt-oss-20b": _p(0.10, 0.50),
    "qwen/qwen3-32b": _p(0.29, 0.59),
    # Together (together.ai/pricing)
    "meta-llama/Llama-3.3-70B-Instruct-Turbo": _p(0.88, 0.88),
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo": _p(0.18, 0.18),
    "deepseek-ai/DeepSeek-V3": _p(1.25, 1.25),
    "Qwen/Qwen2.5-72B-Instruct-Turbo": _p(1.20, 1.20),
    # Fireworks (fireworks.ai/pricing: by size; these are the common serverless models)
    "accounts/fireworks/models/llama-v3p3-70b-instruct": _p(0.90, 0.90),
    "accounts/fireworks/models/llama-v3p1-8b-instruct": _p(0.20, 0.20),
    "accounts/fireworks/models/deepseek-v3": _p(0.90, 0.90),
    # DeepSeek (api-docs.deepseek.com: cache hit 0.028, miss 0.28, output 0.42 per 1M)
    "deepseek-chat": _p(0.28, 0.42, 0.028),
    "deepseek-reasoner": _p(0.28, 0.42, 0.028),
    # OpenAI moderation: free
    "omni-moderation": _p(0.0, 0.0),
    "text-moderation": _p(0.0, 0.0),
    # OpenAI legacy completions
    "gpt-3.5-turbo-instruct": _p(1.50, 2.0),
    "davinci-002": _p(2.0, 2.0),
    "babbage-002": _p(0.40, 0.40),
}
# Bedrock cross-region inference profiles: `us.anthropic.claude-...` is priced as `anthropic.claude-...`.
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")

_SEPARATORS = "-:@"


class PriceTable(Strict):
    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None


class Pricing:
    def __init__(self, prices: dict[str, Price]) -> None:
        self._prices = dict(prices)
        self._fallback = self._prices.pop("*", None)
        # Longest first, so "gpt-4o-mini-2024" finds gpt-4o-mini before gpt-4o.
        self._names = sorted(self._prices, key=len, reverse=True)
        self._cache: dict[str, Price | None] = {}

    @classmethod
    def compile(cls, tables: dict | None = None, *, file: str = "<config>") -> Pricing:
        """Defaults overlaid with `[pricing.MODEL]` tables; ConfigError names a bad one."""
        prices = dict(DEFAULT_PRICES)
        for model, table in (tables or {}).items():
            t = validate(PriceTable, table, file=file, key=f"pricing.{model}")
            if min(t.input, t.output, t.cached_input or 0.0, t.cache_write or 0.0) < 0:
                raise ConfigError(file, f"pricing.{model}", "prices must be >= 0 (USD per million tokens)")
            prices[model] = _p(t.input, t.output, t.cached_input, t.cache_write)
        return cls(prices)

    def price(self, model: str | None) -> Price | None:
        if not model:
            return self._fallback
        if model in self._cache:
            return self._cache[model]
        found = self._lookup(model)
        if found is None and "/" in model:
            found = self._lookup(model.rsplit("/", 1)[1])
        if found is None and model.startswith(_PROFILE_PREFIXES):
            found = self._lookup(model.split(".", 1)[1])
        if found is None:
            found = self._fallback
        if len(self._cache) < 10_000:
            self._cache[model] = found
        return found

    def _lookup(self, model: str) -> Price | None:
        hit = self._prices.get(model)
        if hit is not None:
            return hit
        for name in self._names:
            if model.startswith(name) and model[len(name)] in _SEPARATORS:
                return self._prices[name]
        return None

    def known(self, model: str | None) -> bool:
        return self.price(model) is not None

    def cost_usd(self, model: str | None, usage: Usage) -> float:
        p = self.price(model)
        if p is None:
            return 0.0
        inp = max(usage.input_tokens, 0)
        cached = min(max(usage.cached_tokens, 0), inp)
        written = min(max(usage.cache_write_tokens, 0), inp - cached)
        fresh = inp - cached - written
        return (fresh * p.input + cached * p.cached_input + written * p.cache_write
                + max(usage.output_tokens, 0) * p.output) / 1e6

    def estimate_usd(self, model: str | None, input_tokens: int, output_tokens: int) -> float:
        """Upper estimate before the call: no cache discount, and every prompt token possibly a cache write."""
        p = self.price(model)
        if p is None:
            return 0.0
        return (input_tokens * max(p.input, p.cache_write) + output_tokens * p.output) / 1e6

"""What a request for an alias can cost before routing has picked a target: the worst case over every
target and fallback the alias can reach, compiled once per config.

Admission runs before the router chooses a target, and a retry or a fallback can end the request at
another one, so a reservation that is to bound the spend must cover the dearest target the request can
end at: the highest input price and the highest output price over those targets, and the largest prompt
count over their tokenizers. Settling then charges the price of the target that answered.

An alias's name says nothing about its price or tokenizer (`chat` may route to gpt-4o, `gpt-4o` to a
local model), so neither is ever looked up by the alias name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.config.validate import ConfigError
from gateway.context import Target
from gateway.pricing import Pricing
from gateway.tokens import Tokenizer, encoding_name

if TYPE_CHECKING:
    from gateway.apis.base import ApiSpec


@dataclass(frozen=True, slots=True)
class WorstCase:
    input_per_m: float  # USD per million input tokens, the highest over the reachable targets
    output_per_m: float  # USD per million output tokens, the highest over the reachable targets
    count_models: tuple[str, ...]  # one target model per distinct tokenizer, to count the prompt with
    unpriced: tuple[str, ...]  # "provider/model" of reachable targets that have no price

    def usd(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_m + output_tokens * self.output_per_m) / 1e6

    def prompt_tokens(self, spec: ApiSpec, body: dict[str, Any], tokenizer: Tokenizer) -> int:
        """The request's prompt counted by its API's `ApiSpec.count_prompt`, the largest count over the
        tokenizers of the reachable targets."""
        if len(self.count_models) == 1:
            return spec.count_prompt(body, self.count_models[0], tokenizer)
        return max(spec.count_prompt(body, m, tokenizer) for m in self.count_models)


def worst_case(targets: Sequence[Target], pricing: Pricing) -> WorstCase:
    prices = [pricing.price(t.model) for t in targets]
    known = [p for p in prices if p is not None]
    by_encoding: dict[str, str] = {}
    for t in targets:
        by_encoding.setdefault(encoding_name(t.model), t.model)
    return WorstCase(
        input_per_m=max((p.input for p in known), default=0.0),
        output_per_m=max((p.output for p in known), default=0.0),
        count_models=tuple(by_encoding.values()) or ("",),
        unpriced=tuple(dict.fromkeys(f"{t.provider}/{t.model}" for t, p in zip(targets, prices) if p is None)),
    )


def compile_worst_cases(reach: Mapping[str, Sequence[Target]], pricing: Pricing) -> dict[str, WorstCase]:
    """alias -> its worst case, from alias -> every target it can reach (`Router.reachable`)."""
    return {alias: worst_case(targets, pricing) for alias, targets in reach.items()}


def check_usd_budget(file: str, key: str, limit: float, aliases: Iterable[str] | None,
                     cases: Mapping[str, WorstCase]) -> None:
    """A USD budget must be able to price every target it can be charged for: an unpriced target costs
    $0, so the budget would silently stop counting. `aliases` is the budget's `models` selector (None:
    every alias). A budget of 0 refuses everything it covers, so it needs no price."""
    if limit <= 0:
        return
    for alias in (cases if aliases is None else sorted(aliases)):
        case = cases.get(alias)
        if case is None or not case.unpriced:
            continue  # an alias the config does not route can never be charged
        model = case.unpriced[0].split("/", 1)[1]
        raise ConfigError(file, key, (
            f"a price for every model this USD budget covers: alias '{alias}' can reach {', '.join(case.unpriced)}, "
            f'which has no price; add [pricing."{model}"] (input, output in USD per million tokens) or '
            '[pricing."*"] to the main config, or narrow the budget with `models`'))

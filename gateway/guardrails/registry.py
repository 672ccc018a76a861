"""Guardrail types by `type` name: each maps to its rule schema and a builder of its runtime guard.

Adding a guardrail type is one module (a `Strict` rule model and a `Guard` subclass) plus one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.config.validate import ConfigError, SourcedRule, Strict, validate_rule
from gateway.guardrails.deny_list import DenyListGuard, DenyListRule
from gateway.guardrails.policy import DetectorCache, Guard, InjectionGuard, InjectionRule, PiiGuard, PiiRule

Builder = Callable[[Strict, SourcedRule, DetectorCache], Guard]

TYPES: dict[str, tuple[type[Strict], Builder]] = {
    "pii": (PiiRule, lambda rule, src, cache: PiiGuard(rule, src, cache)),
    "secrets": (PiiRule, lambda rule, src, cache: PiiGuard(rule, src, cache)),
    "injection": (InjectionRule, lambda rule, src, cache: InjectionGuard(rule, src)),
    "deny_list": (DenyListRule, lambda rule, src, cache: DenyListGuard(rule, src)),
}


def compile_rule(source: SourcedRule, cache: DetectorCache) -> Guard:
    kind = source.data.get("type") if isinstance(source.data, dict) else None
    entry = TYPES.get(kind) if isinstance(kind, str) else None
    if entry is None:
        raise ConfigError(source.file, f"{source.key}.type", f"one of {', '.join(sorted(TYPES))}")
    model, build = entry
    return build(validate_rule(model, source), source, cache)

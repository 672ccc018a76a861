"""Raw schemas of `[[guardrails]]` rules: one strict pydantic model per `type`, plus their shared fields.

Phase one of the two-phase load: these models only check shape and ranges. `registry.compile_rule`
turns a validated rule into a runtime guard (detectors built once, keys read from the environment).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from gateway import reasons
from gateway.config.validate import ConfigError, SourcedRule, Strict
from gateway.guardrails.actions import SpanAction, hash_key_from_env
from gateway.guardrails.pii.holdback import growing_suffix_start

if TYPE_CHECKING:
    from gateway.guardrails.pii import Finding

log = logging.getLogger(__name__)

DEFAULT_HOLD_BACK = 256
SPAN_ACTIONS = ("redact", "mask", "hash", "pseudonymize", "block", "flag")


class RuleBase(Strict):
    id: str = Field(min_length=1)
    # Scope: a rule applies when every non-empty list contains the request's value (empty = all).
    keys: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # aliases; shell-style patterns ("gpt-4*") allowed
    direction: Literal["input", "output", "both"] = "both"
    on_error: Literal["closed", "open"] = "closed"
    # Tell the caller what this rule did to the request in the x-gateway-guardrails response header (entity
    # types and counts, e.g. "redacted=EMAIL_ADDRESS:2"; never the values, never an injection score).
    outcome_header: bool = False

    @property
    def scans_input(self) -> bool:
        return self.direction in ("input", "both")

    @property
    def scans_output(self) -> bool:
        return self.direction in ("output", "both")


class PiiRule(RuleBase):
    """PII and secrets. `type = "secrets"` is the same rule with `entities` defaulting to SECRET."""

    type: Literal["pii", "secrets"]
    entities: tuple[str, ...] | None = None  # None: every fast-tier type (plus NER types with ner = true)
    thresholds: dict[str, float] = {}
    action: Literal["redact", "mask", "hash", "pseudonymize", "block", "flag"] = "redact"
    mask_keep_last: int = Field(default=4, ge=0, le=64)
    hash_key_env: str | None = None  # env var holding the HMAC key; unset: a random key per process
    ner: bool = False
    ner_timeout_ms: int = Field(default=500, gt=0, le=60_000)
    hold_back_chars: int | None = Field(default=None, gt=0, le=65_536)  # None: DEFAULT_HOLD_BACK

    @model_validator(mode="after")
    def _check(self) -> PiiRule:
        for entity, value in self.thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"thresholds.{entity} must be between 0 and 1")
        if self.hash_key_env is not None and self.action != "hash":
            raise ValueError("hash_key_env only applies to action = \"hash\"")
        if self.action == "pseudonymize" and self.direction == "output":
            raise ValueError("pseudonymize replaces input values and restores them in the answer; "
                             "use direction = \"input\" or \"both\"")
        return self


class InjectionRule(RuleBase):
    """Prompt-injection scoring of user messages, tool results and documents (input only)."""

    type: Literal["injection"]
    direction: Literal["input"] = "input"
    action: Literal["block", "flag"] = "block"
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # None: the detector's default


# ---- runtime forms -------------------------------------------------------------------------------


class Guard:
    """A compiled rule. Subclasses are built once at start-up and hold no per-request state."""

    kind = ""

    def __init__(self, rule: RuleBase, source: SourcedRule) -> None:
        self.rule = rule
        self.source = source
        self.id = rule.id  # read for every decision; a plain attribute, not a property

    def applies(self, key_id: str | None, team: str | None, alias: str | None) -> bool:
        r = self.rule
        if r.keys and key_id not in r.keys:
            return False
        if r.teams and team not in r.teams:
            return False
        if r.models:
            if alias is None:
                return False
            return any(fnmatchcase(alias, m) if _is_pattern(m) else alias == m for m in r.models)
        return True


class SpanGuard(Guard):
    """A rule that finds spans in text and acts on each (pii, secrets, deny_list)."""

    action: SpanAction
    hold_back: int  # the stream scanner's bound on unreleased characters for this rule
    max_entity_len: int
    has_slow_tier = False
    # Set where `may_continue` is the growing-suffix rule with these arguments (max_len, names, emails):
    # a plan then answers for all such rules in one pass (`HoldBack`) instead of asking each.
    hold_spec: tuple[int, bool, bool] | None = None
    # Set where this rule's spans are a filter of one detection pass shared with other rules: a text
    # in which that pass finds nothing has no span of this rule either.
    shared: SharedDetection | None = None

    def detect(self, text: str) -> list[Finding]:
        raise NotImplementedError

    def may_continue(self, text: str) -> int:
        """Smallest index where a span could still be growing if text were appended."""
        return max(0, len(text) - self.max_entity_len)

    def detect_slow(self, text: str) -> list[Finding]:
        """The slow (NER) tier; called in an executor, never on the event loop."""
        return []

    def reason(self, entities: dict[str, int]) -> str:
        raise NotImplementedError


class PiiGuard(SpanGuard):
    kind = "pii"

    def __init__(self, rule: PiiRule, source: SourcedRule, detectors: DetectorCache) -> None:
        from gateway.guardrails.pii import FAST_TIER_ENTITIES, NER_ENTITIES

        super().__init__(rule, source)
        known = set(FAST_TIER_ENTITIES) | set(NER_ENTITIES)
        if rule.entities is not None:
            entities = rule.entities
        elif rule.type == "secrets":
            entities = ("SECRET",)
        else:  # NRP (nationality, religion, politics) is too broad to redact by default
            entities = FAST_TIER_ENTITIES + (tuple(e for e in NER_ENTITIES if e != "NRP") if rule.ner else ())
        unknown = sorted(set(entities) - known)
        if unknown:
            raise ConfigError(source.file, f"{source.key}.entities", f"entity types among {sorted(known)} (not {unknown})")
        ner_types = tuple(e for e in entities if e in NER_ENTITIES)
        if ner_types and not rule.ner:
            raise ConfigError(source.file, f"{source.key}.ner", f"true, since {ner_types} need the NER tier")
        bad = sorted(set(rule.thresholds) - set(entities))
        if bad:
            raise ConfigError(source.file, f"{source.key}.thresholds", f"keys among the rule's entities (not {bad})")
        fast_types = tuple(e for e in entities if e in FAST_TIER_ENTITIES)
        self.entities = tuple(entities)
        self._fast = detectors.get(fast_types, rule.thresholds, ner=False) if fast_types else None
        self._slow = detectors.get(ner_types, rule.thresholds, ner=True) if ner_types else None
        self.has_slow_tier = self._slow is not None
        self.ner_timeout = rule.ner_timeout_ms / 1000
        self.max_entity_len = self._fast.max_entity_len if self._fast else 0
        if self._slow is not None:  # names on output: held while a capitalised word may still join one
            self.max_entity_len = max(self.max_entity_len, self._slow.max_entity_len)
        self.hold_back = resolve_hold_back(rule.hold_back_chars, self.max_entity_len, source)
        self.action = _span_action(rule, source)
        self.fast_types = frozenset(fast_types)
        self._thresholds = {e: rule.thresholds.get(e, PII_DEFAULT_THRESHOLD) for e in fast_types}
        self.hold_spec = self._fast.hold_spec if self._fast is not None else None
        if self._slow is not None:
            self.hold_spec = (self.max_entity_len, True, "EMAIL_ADDRESS" in fast_types)

    def share(self, shared: SharedDetection) -> None:
        """Take findings from one detection pass shared with the other fast-tier rules of the config."""
        self.shared = shared

    def detect(self, text: str) -> list[Finding]:
        if self.shared is not None:
            found = self.shared.detect(text)
            if not found:
                return []
            types, thresholds = self.fast_types, self._thresholds
            return [f for f in found if f.entity_type in types and f.score >= thresholds[f.entity_type]]
        return self._fast.detect(text) if self._fast is not None else []

    def may_continue(self, text: str) -> int:
        if self.hold_spec is None:
            return len(text)
        return growing_suffix_start(text, *self.hold_spec)

    def detect_slow(self, text: str) -> list[Finding]:
        return self._slow.detect(text) if self._slow is not None else []

    def reason(self, entities: dict[str, int]) -> str:
        if self.rule.type == "secrets" or (entities and set(entities) == {"SECRET"}):
            return reasons.SECRET_DETECTED
        return reasons.PII_DETECTED


class InjectionGuard(Guard):
    kind = "injection"

    def __init__(self, rule: InjectionRule, source: SourcedRule) -> None:
        from gateway.guardrails.injection import DEFAULT_THRESHOLD, InjectionDetector

        super().__init__(rule, source)
        self.action = rule.action
        self.detector = InjectionDetector(DEFAULT_THRESHOLD if rule.threshold is None else rule.threshold)

    def score(self, text: str) -> float:
        return self.detector.score(text)

    @property
    def threshold(self) -> float:
        return self.detector.threshold


PII_DEFAULT_THRESHOLD = 0.5  # gateway.guardrails.pii's default per-entity threshold


class SharedDetection:
    """One fast-tier pass over a text for every PII rule of a config (the union of their entity types
    at the lowest threshold each asks for); each rule keeps its own types and thresholds. Memoised on
    the last text object, since a scan hands the same string to every rule in turn."""

    __slots__ = ("detector", "_text", "_found")

    def __init__(self, detector) -> None:
        self.detector = detector
        self._text: str | None = None
        self._found: list = []

    def detect(self, text: str) -> list[Finding]:
        if text is not self._text:
            self._found = self.detector.detect(text)
            self._text = text
        return self._found


def share_fast_detection(guards: Sequence, detectors: DetectorCache) -> None:
    """Give every fast-tier PII rule one shared detection pass when there are several of them."""
    pii = [g for g in guards if isinstance(g, PiiGuard) and g.fast_types]
    if len(pii) < 2:
        return
    types = sorted(set().union(*(g.fast_types for g in pii)))
    thresholds = {e: min(g._thresholds[e] for g in pii if e in g.fast_types) for e in types}
    shared = SharedDetection(detectors.get(tuple(types), thresholds, ner=False))
    for g in pii:
        g.share(shared)


class DetectorCache:
    """Shares one PiiDetector between rules with the same settings (building one compiles ~20 patterns)."""

    def __init__(self) -> None:
        self._built: dict[tuple, object] = {}

    def get(self, entities: tuple[str, ...], thresholds: dict[str, float], *, ner: bool):
        from gateway.guardrails.pii import PiiDetector

        wanted = {e: v for e, v in thresholds.items() if e in entities}
        key = (frozenset(entities), tuple(sorted(wanted.items())), ner)
        det = self._built.get(key)
        if det is None:
            det = self._built[key] = PiiDetector(entities=entities, thresholds=wanted, ner=ner)
        return det


def resolve_hold_back(configured: int | None, max_entity_len: int, source: SourcedRule) -> int:
    """The stream bound: never below the longest entity, else a split entity could leak."""
    if configured is None:
        if max_entity_len > DEFAULT_HOLD_BACK:
            log.info("guardrail %s: hold_back_chars raised from the default %d to %d, the longest entity "
                     "its detectors can match", source.key, DEFAULT_HOLD_BACK, max_entity_len)
        return max(DEFAULT_HOLD_BACK, max_entity_len)
    if configured < max_entity_len:
        raise ConfigError(source.file, f"{source.key}.hold_back_chars",
                          f"at least {max_entity_len}, the longest entity this rule's detectors match")
    return configured


def _span_action(rule: PiiRule, source: SourcedRule) -> SpanAction:
    if rule.action == "hash":
        key = hash_key_from_env(rule.hash_key_env)
        if key is None:
            raise ConfigError(source.file, f"{source.key}.hash_key_env",
                              f"the environment variable {rule.hash_key_env} to be set (the HMAC key)")
        return SpanAction("hash", hash_key=key)
    return SpanAction(rule.action, keep_last=rule.mask_keep_last)


def _is_pattern(s: str) -> bool:
    return any(c in s for c in "*?[")

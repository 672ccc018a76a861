"""What a guardrail does with a detected span: the replacement text for each action, and pseudonym tables.

Actions are pure functions of the matched value and the rule's settings, so input rewriting, the stream
scanner and `gateway scan` all produce the same text. `block` and `flag` never change text here; the
engine raises or records them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field

TEXT_ACTIONS = frozenset({"redact", "mask", "hash", "pseudonymize"})
# Strongest first: when several rules act on one text, the decision reported is the strongest.
SEVERITY = {"block": 4, "redact": 3, "mask": 3, "hash": 3, "pseudonymize": 3, "flag": 1, "allow": 0}

PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*)_([1-9][0-9]{0,5})>")
PLACEHOLDER_MAX_LEN = 40


@dataclass(frozen=True, slots=True)
class SpanAction:
    kind: str  # one of policy.SPAN_ACTIONS
    keep_last: int = 4  # mask
    hash_key: bytes = b""  # hash

    @property
    def changes_text(self) -> bool:
        return self.kind in TEXT_ACTIONS

    def replace(self, entity_type: str, value: str, pseudonyms: Pseudonyms | None = None) -> str:
        kind = self.kind
        if kind == "redact":
            return f"<{entity_type}>"
        if kind == "mask":
            return mask(value, self.keep_last)
        if kind == "hash":
            return f"<{entity_type}:{keyed_hash(self.hash_key, value)}>"
        if kind == "pseudonymize":
            if pseudonyms is None:  # no request to restore into (e.g. `gateway scan`): a plain label
                return f"<{entity_type}>"
            return pseudonyms.pseudonym(entity_type, value)
        return value


def mask(value: str, keep_last: int) -> str:
    """Every character becomes `*` except the last `keep_last`; short values are masked whole."""
    keep = keep_last if len(value) > 2 * keep_last else 0
    return "*" * (len(value) - keep) + (value[len(value) - keep :] if keep else "")


def keyed_hash(key: bytes, value: str) -> str:
    """First 8 hex digits of HMAC-SHA256: stable for one key, not reversible without it."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:8]


def hash_key_from_env(env_var: str | None) -> bytes | None:
    """The key named by the rule, or None when that variable is unset. No name: a random per-process key."""
    if env_var is None:
        return _PROCESS_KEY
    value = os.environ.get(env_var)
    return value.encode("utf-8") if value else None


_PROCESS_KEY = os.urandom(32)


@dataclass(slots=True)
class Pseudonyms:
    """One request's value <-> placeholder table. Never logged, never outlives the request."""

    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _by_token: dict[str, str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)

    def pseudonym(self, entity_type: str, value: str) -> str:
        token = self._by_value.get((entity_type, value))
        if token is None:
            n = self._counts.get(entity_type, 0) + 1
            self._counts[entity_type] = n
            token = f"<{entity_type}_{n}>"
            self._by_value[(entity_type, value)] = token
            self._by_token[token] = value
        return token

    def original(self, token: str) -> str | None:
        return self._by_token.get(token)

    def __bool__(self) -> bool:
        return bool(self._by_token)

    def __len__(self) -> int:
        return len(self._by_token)

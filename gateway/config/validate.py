"""Strict validation helpers shared by every config section's owner.

Each section (server, providers, keys, rate limits, budgets, guardrails, audit, alerts) is validated by
a pydantic model owned by the module that uses it, always with `extra="forbid"`, through `validate`
here, so a bad file fails with the file, the key and what was expected, before the gateway serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are not silently coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(Exception):
    """A configuration problem, with where it is and what was expected."""

    def __init__(self, file: str, key: str, expected: str) -> None:
        super().__init__(f"{file}: {key}: {expected}")
        self.file = file
        self.key = key
        self.expected = expected


@dataclass(frozen=True, slots=True)
class SourcedRule:
    """One rule table from a policy file (`[[keys]]`, `[[rate_limits]]`, ...), with where it came from."""

    file: str
    key: str  # e.g. "rate_limits[2]"
    data: dict[str, Any]


def validate(model: type[M], data: Any, *, file: str, key: str = "") -> M:
    """Validate `data` against `model`, raising ConfigError naming the first bad key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        where = f"{key}.{loc}" if key and loc else (key or loc or "<root>")
        msg = first["msg"]
        if first["type"] == "extra_forbidden":
            msg = "unknown key"
        raise ConfigError(file, where, msg) from None


def validate_rule(model: type[M], rule: SourcedRule) -> M:
    return validate(model, rule.data, file=rule.file, key=rule.key)

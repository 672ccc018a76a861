"""Raw schema of `[[alerts]]` rules and their compiled form.

Two kinds of rule, tagged by `type`:

- `type = "metric"` (the default): a number read from the `/stats` JSON by a dotted path such as
  `windows.5m.error_rate` or `windows.5m.latency_ms.p95`, compared with `threshold`.
- `type = "budget"`: a ready-made rule over a `[[budgets]]` rule by its id: fires when the settled
  spend of the current window plus the demand it refused reaches `percent` of the budget's limit. It reads the same store
  counters that admit requests, so every instance sharing a Redis sees the same spend.

Both fire after the condition has held for `for`, resolve when it no longer holds, and notify each of
their `webhooks`. Webhook URLs come from an environment variable (`url_env`) or a literal `url`; a
URL is a secret (Slack's are), so it never appears in logs or summaries.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, model_validator

from gateway.config.validate import ConfigError, SourcedRule, Strict, validate_rule
from gateway.limits.rules import BudgetRule, Duration, compile_rules, duration_ms

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}
WINDOWS = ("1m", "5m", "1h")
# Leaves of each `/stats` window (gateway.records.stats.RollingStats._window) that are numbers.
WINDOW_METRICS = frozenset(
    ["requests", "rps", "error_rate", "rejected_rate"]
    + [f"{h}.p{q}" for h in ("latency_ms", "ttft_ms") for q in (50, 95, 99)]
)


class WebhookConfig(Strict):
    """Where a rule's notifications go. One of `url` or `url_env`."""

    # Literal URL. Prefer url_env: a Slack webhook URL is a credential.
    url: str | None = None
    # Name of the environment variable holding the URL (read at load and on each reload).
    url_env: str | None = None
    # "slack": Slack-compatible {"text", "attachments"}; "json": the generic payload (see Delivery below).
    format: Literal["slack", "json"] = "json"
    # Each delivery attempt, connect to last byte.
    timeout_s: float = Field(5.0, gt=0, le=120)
    # Attempts per notification (connection errors, timeouts, 429 and 5xx are retried).
    max_attempts: int = Field(5, ge=1, le=20)
    backoff_s: float = Field(1.0, ge=0)  # wait before the first retry; doubled after each (with jitter)
    max_backoff_s: float = Field(60.0, ge=0)  # cap of that wait

    @model_validator(mode="after")
    def _one_url(self) -> WebhookConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("needs exactly one of url, url_env")
        return self


class AlertTable(Strict):
    """One `[[alerts]]` rule."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    type: Literal["metric", "budget", "drift"] = "metric"
    # metric rules: a dotted path into /stats ("windows.5m.error_rate"); with `window` set, the path
    # inside that window ("error_rate", "latency_ms.p95").
    metric: str | None = None
    # metric rules: the /stats window `metric` is read in (then `metric` is the path inside it).
    window: Literal["1m", "5m", "1h"] | None = None
    # metric rules: fire when `value op threshold` holds (budget rules always compare with >=).
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float | None = None  # metric rules: the number the value is compared with
    # metric rules: evaluate only when the window saw at least this many requests (ratios and
    # percentiles over a handful of requests are noise).
    min_requests: int = Field(0, ge=0)
    # budget rules: the id of the [[budgets]] rule whose counter to watch.
    budget: str | None = None
    # budget rules: fire when settled spend plus refused demand reaches this share of the budget's limit, in percent.
    percent: float | None = Field(None, gt=0, le=1000)
    # budget rules over a per-key/team/user/model/tag budget (per = "each"): whose counter.
    subject: str | None = None
    # How long the condition must hold before the alert fires (0: at the first evaluation that sees it).
    for_: Duration = Field(0, alias="for")
    # How often the rule is evaluated.
    every: Duration = "10s"
    # After a firing notification, the same rule does not fire again for this long (flapping).
    cooldown: Duration = "5m"
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str | None = None  # free text carried in the notification
    runbook: str | None = None  # a link for whoever is paged
    send_resolved: bool = True  # also notify when the condition no longer holds
    webhooks: list[WebhookConfig] = Field(min_length=1)  # where notifications go (below)
    # drift rules: the alias whose input PSI to watch (default: every alias, the largest PSI).
    alias: str | None = None
    # drift rules: one feature (prompt_tokens, messages, language, tools, injection, guardrail); default: the largest.
    feature: Literal["prompt_tokens", "messages", "language", "tools", "injection", "guardrail"] | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> AlertTable:
        if self.type == "drift":
            if self.metric is not None or self.window is not None or self.budget is not None or self.percent is not None:
                raise ValueError('metric, window, budget and percent do not belong to type = "drift"')
            return self
        if self.alias is not None or self.feature is not None:
            raise ValueError('alias and feature belong to type = "drift"')
        if self.type == "metric":
            if self.metric is None or self.threshold is None:
                raise ValueError('type = "metric" needs metric and threshold')
            if self.budget is not None or self.percent is not None or self.subject is not None:
                raise ValueError('budget, percent and subject belong to type = "budget"')
        else:
            if self.budget is None or self.percent is None:
                raise ValueError('type = "budget" needs budget (a [[budgets]] id) and percent')
            if self.metric is not None or self.threshold is not None or self.window is not None:
                raise ValueError('metric, window and threshold belong to type = "metric"')
        return self


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    format: str
    timeout_s: float
    max_attempts: int
    backoff_s: float
    max_backoff_s: float
    label: str  # safe to log: the env var's name, or the URL's host

    @property
    def channel(self) -> tuple[str, str]:
        """Deliveries to the same URL and format share one queue and one worker."""
        return (self.url, self.format)


@dataclass(frozen=True, slots=True)
class AlertRule:
    id: str
    kind: str  # "metric" | "budget"
    severity: str
    path: tuple[str, ...]  # metric rules
    op: str
    threshold: float
    min_requests: int
    window: str | None  # the /stats window the path reads, when it reads one
    budget: BudgetRule | None
    subject: str  # budget rules: the counter's subject ("*" for shared and global budgets)
    for_s: float
    every_s: float
    cooldown_s: float
    summary: str | None
    runbook: str | None
    send_resolved: bool
    webhooks: tuple[Webhook, ...]
    source: str  # "file: alerts[i]"
    alias: str | None = None  # drift rules: None is every alias
    feature: str | None = None  # drift rules: None is the largest PSI of any feature

    @property
    def what(self) -> str:
        """What the rule watches, in words for a notification."""
        if self.kind == "drift":
            return f"input drift PSI of {self.feature or 'any feature'} for {self.alias or 'any alias'}"
        if self.kind == "budget":
            who = "" if self.subject == "*" else f" for {self.subject}"
            return f"budget '{self.budget.id}'{who} used (% of limit)"  # type: ignore[union-attr]
        return ".".join(self.path)

    def holds(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)


@dataclass(frozen=True, slots=True)
class Alerts:
    rules: tuple[AlertRule, ...]

    @property
    def tick_s(self) -> float:
        return max(min(r.every_s for r in self.rules), 0.1)

    @classmethod
    def compile(cls, alerts: list[SourcedRule], budgets: list[SourcedRule], *, drift_enabled: bool = True) -> Alerts:
        """Compile `[[alerts]]`; budget rules are resolved against the `[[budgets]]` tables."""
        _, budget_rules = compile_rules([], budgets)
        by_id = {b.id: b for b in budget_rules}
        seen: dict[str, str] = {}
        rules = []
        for src in alerts:
            t = validate_rule(AlertTable, src)
            if t.type == "drift" and not drift_enabled:
                raise ConfigError(src.file, f"{src.key}.type", '[drift] enabled = true in the main config (a drift '
                                  "alert watches PSI, which is only computed then)")
            if t.id in seen:
                raise ConfigError(src.file, f"{src.key}.id", f"a unique alert id ({t.id!r} is also {seen[t.id]})")
            seen[t.id] = src.key
            rules.append(_compile_rule(t, src, by_id))
        return cls(tuple(rules))


def _seconds(value: Duration, src: SourcedRule, key: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return 0.0
    return duration_ms(value, file=src.file, key=f"{src.key}.{key}") / 1000


def _webhook(w: WebhookConfig, src: SourcedRule, i: int) -> Webhook:
    key = f"{src.key}.webhooks[{i}]"
    if w.url_env is not None:
        url = os.environ.get(w.url_env, "")
        if not url:
            raise ConfigError(src.file, f"{key}.url_env", f"the name of a set environment variable ({w.url_env} is not set)")
        label = f"${w.url_env}"
    else:
        url = w.url or ""
        label = urlsplit(url).hostname or "?"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(src.file, f"{key}.{'url_env' if w.url_env else 'url'}", "an http:// or https:// URL")
    return Webhook(url, w.format, w.timeout_s, w.max_attempts, w.backoff_s, max(w.max_backoff_s, w.backoff_s), label)


def _compile_rule(t: AlertTable, src: SourcedRule, budgets: dict[str, BudgetRule]) -> AlertRule:
    budget, subject, path, window = None, "*", (), None
    if t.type == "metric":
        raw = f"windows.{t.window}.{t.metric}" if t.window else t.metric or ""
        path = tuple(raw.split("."))
        if not all(path):
            raise ConfigError(src.file, f"{src.key}.metric", "a dotted path into /stats such as 'windows.5m.error_rate'")
        if path[0] == "windows":
            leaf = ".".join(path[2:])
            if len(path) < 3 or path[1] not in WINDOWS or leaf not in WINDOW_METRICS:
                raise ConfigError(src.file, f"{src.key}.metric",
                                  f"windows.<{'|'.join(WINDOWS)}>.<{'|'.join(sorted(WINDOW_METRICS))}>")
            window = path[1]
        op, threshold = t.op, float(t.threshold)  # type: ignore[arg-type]
    elif t.type == "drift":
        # PSI above 0.2 is the usual alarm for a shifted distribution.
        op, threshold = t.op, 0.2 if t.threshold is None else float(t.threshold)
    else:
        budget = budgets.get(t.budget or "")
        if budget is None:
            raise ConfigError(src.file, f"{src.key}.budget",
                              f"the id of a [[budgets]] rule (no {t.budget!r}; ids: {', '.join(sorted(budgets)) or 'none'})")
        if budget.shared or budget.scope == "global":
            if t.subject is not None:
                raise ConfigError(src.file, f"{src.key}.subject", f"no subject: budget '{budget.id}' is one shared counter")
        elif t.subject is None:
            raise ConfigError(src.file, f"{src.key}.subject",
                              f"the {budget.scope} whose budget to watch (budget '{budget.id}' counts each {budget.scope} apart)")
        else:
            subject = t.subject.replace("{", "(").replace("}", ")")  # as gateway.limits.rules.hash_tag_safe
        op, threshold = ">=", float(t.percent)  # type: ignore[arg-type]
    webhooks = tuple(_webhook(w, src, i) for i, w in enumerate(t.webhooks))
    return AlertRule(
        id=t.id, kind=t.type, severity=t.severity, path=path, op=op, threshold=threshold,
        min_requests=t.min_requests, window=window, budget=budget, subject=subject,
        for_s=_seconds(t.for_, src, "for"), every_s=_seconds(t.every, src, "every") or 10.0,
        cooldown_s=_seconds(t.cooldown, src, "cooldown"), summary=t.summary, runbook=t.runbook,
        send_resolved=t.send_resolved, webhooks=webhooks, source=f"{src.file}: {src.key}",
        alias=t.alias, feature=t.feature,
    )

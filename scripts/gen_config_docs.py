"""Generate docs/configuration.md from the pydantic schemas that validate the config.

    .venv/bin/python scripts/gen_config_docs.py            # rewrite docs/configuration.md
    .venv/bin/python scripts/gen_config_docs.py --check    # exit 1 when the file is out of date

Every table is read from the model that validates it (so a key that exists is documented and a key
that is documented exists); each key's description is the comment written above it (or beside it) in
the model's source. tests/unit/test_config_docs.py fails when the committed file differs.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "docs" / "configuration.md"
_FIELD = re.compile(r"^\s{4}(\w+)\s*:")


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the comment lines just above its line (or its trailing comment), per class in the MRO."""
    out: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls.__module__.startswith("pydantic"):
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        above: list[str] = []
        for line in lines[1:]:
            stripped = line.strip()
            if stripped.startswith("#") and line.startswith("    ") and not line.startswith("     "):
                above.append(stripped.lstrip("#").strip())
                continue
            m = _FIELD.match(line)
            if m and not stripped.startswith(("def ", "@", "model_config")):
                trailing = line.split("  # ", 1)[1].strip() if "  # " in line else ""
                text = " ".join(above) or trailing
                if text:
                    out[m.group(1)] = text
            above = []
    return out


def _type(ann: object) -> str:
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Literal:
        return " \\| ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [a for a in args if a is not type(None)]
        if set(names) >= {int, float, str}:
            return "duration"
        if all(isinstance(a, type) and issubclass(a, BaseModel) for a in names):
            return "table"
        inner = " \\| ".join(_type(a) for a in names)
        return inner
    if origin is typing.Annotated:
        return _type(args[0])
    if origin in (list, tuple):
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        return f"table of {_type(args[1])}" if len(args) == 2 else "table"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "table"
    if ann is typing.Any:
        return "any"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(ann, getattr(ann, "__name__", str(ann)))  # type: ignore[call-overload]


def _bounds(field) -> str:
    marks = []
    for m in field.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "min length"),
                          ("max_length", "max length"), ("pattern", "pattern")):
            v = getattr(m, attr, None)
            if v is not None:
                marks.append(f"{sym} `{v}`" if attr == "pattern" else f"{sym} {v}")
    return f" ({', '.join(marks)})" if marks else ""


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, (list, tuple, dict)) and not value:
        return "`[]`" if not isinstance(value, dict) else "`{}`"
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in value) + "]`"
    return f"`{value}`"


def table(model: type[BaseModel], skip: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> str:
    notes = _comments(model)
    rows = ["| key | type | default | what |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if name in skip or (only is not None and name not in only):
            continue
        key = field.alias or name
        what = (field.description or notes.get(name) or NOTES.get((model.__name__, name), "")).replace("|", "\\|")
        rows.append(f"| `{key}` | {_type(field.annotation)}{_bounds(field)} | {_default(field)} | {what} |")
    return "\n".join(rows)


def doc(model: type[BaseModel]) -> str:
    text = inspect.getdoc(model) or ""
    own = model.__doc__ is not None and "__doc__" in model.__dict__
    return text + "\n\n" if own and text else ""


def build() -> str:
    from gateway.alerts.rules import AlertTable, WebhookConfig
    from gateway.auth import KeyRule
    from gateway.config.schema import AdminConfig, DriftConfig, MainConfig, ModelConfig, ServerConfig, ShadowConfig, StoreConfig, TargetConfig
    from gateway.config.schema import AdminKeyConfig
    from gateway.config.schema import CanaryConfig, LogsConfig, TracingConfig
    from gateway.guardrails.deny_list import DenyListRule
    from gateway.guardrails.policy import InjectionRule, PiiRule, RuleBase
    from gateway.limits.rules import BudgetTable, RateLimitTable
    from gateway.pricing import PriceTable
    from gateway.providers.base import ProviderOptions
    from gateway.providers.registry import PROVIDERS
    from gateway.records.config import AuditConfig, FileSink, RedisSink, StdoutSink

    common = set(RuleBase.model_fields)
    parts = [HEADER]
    parts += ["## The main file\n", "### Top level\n", table(MainConfig, only=("policies",)), "\n",
              "### `[server]`\n", table(ServerConfig), "\n", "### `[admin]`\n", table(AdminConfig), "\n",
              "Each of `[[admin.keys]]`:\n\n", table(AdminKeyConfig), "\n",
              "### `[store]`\n", table(StoreConfig), "\n",
              "### `[providers.NAME]`\n", PROVIDERS_INTRO, "\nEvery type:\n\n", table(ProviderOptions), "\n"]
    for kind, cls in PROVIDERS.items():
        opts = cls.Options
        extra = [n for n in opts.model_fields if n not in ProviderOptions.model_fields]
        if extra:
            parts += [f"\n`type = \"{kind}\"` adds:\n\n", table(opts, only=tuple(extra)), "\n"]
        else:
            parts += [f"\n`type = \"{kind}\"`: the common keys only.\n"]
    parts += ["\n### `[models.ALIAS]`\n", table(ModelConfig), "\n", "\nEach of `targets`:\n\n", table(TargetConfig), "\n",
              "\n`[models.ALIAS.canary]`:\n\n", table(CanaryConfig), "\n",
              "\nThe `shadow` table (shadow traffic, see [shadow.md](shadow.md)):\n\n", table(ShadowConfig), "\n",
              "\n### `[pricing.MODEL]`\n", PRICING_INTRO, table(PriceTable), "\n",
              "\n### `[audit]`\n", "See [records.md](records.md) for what is recorded and how the chain is verified.\n\n",
              table(AuditConfig), "\n"]
    for sink in (StdoutSink, RedisSink, FileSink):
        kind = typing.get_args(sink.model_fields["type"].annotation)[0]
        parts += [f"\n`[[audit.sinks]] type = \"{kind}\"`:\n\n", table(sink), "\n"]
    parts += ["\n### `[tracing]`\n", doc(TracingConfig), table(TracingConfig), "\n",
              "\n### `[logs]`\n", doc(LogsConfig), table(LogsConfig), "\n"]
    parts += ["\n### `[drift]`\n", "Input drift per alias (see [records.md](records.md#input-drift)): the windows its PSI "
              "compares.\n\n", table(DriftConfig), "\n"]
    parts += ["\n## Policy files\n", POLICY_INTRO,
              "\n### `[[keys]]`\n", table(KeyRule), "\n",
              "\n### `[[rate_limits]]`\n", LIMITS_INTRO, table(RateLimitTable), "\n",
              "\n### `[[budgets]]`\n", table(BudgetTable), "\n",
              "\n### `[[guardrails]]`\n", "Every type:\n\n", table(RuleBase), "\n"]
    for kind, model in (("pii", PiiRule), ("secrets", PiiRule), ("injection", InjectionRule), ("deny_list", DenyListRule)):
        if kind == "secrets":
            parts += ['\n`type = "secrets"`: the `pii` keys, with `entities` defaulting to the secret detectors.\n']
            continue
        parts += [f"\n`type = \"{kind}\"`{': ' + doc(model).strip() if doc(model) else ''}\n\n",
                  table(model, skip=tuple(n for n in common if n not in ("direction",)) + ("type",)), "\n"]
    parts += ["\n### `[[alerts]]`\n", ALERTS_INTRO, table(AlertTable), "\n",
              "\nEach of `webhooks`:\n\n", table(WebhookConfig), "\n", ALERTS_DESIGN]
    from gateway.config.schema import CacheRule, ResponseCacheConfig
    parts += ["\n### `[[cache]]`\n", doc(CacheRule), CACHE_INTRO, table(CacheRule), "\n",
              "\nProcess-wide settings, in the main file's `[response_cache]`:\n\n", doc(ResponseCacheConfig),
              table(ResponseCacheConfig), "\n"]
    text = "".join(p if p.endswith("\n") else p + "\n" for p in parts)
    text = re.sub(r"(?m)^(#{2,4} .*)$", r"\n\1\n", text)  # a blank line around each heading
    return re.sub(r"\n{3,}", "\n\n", text)


# Descriptions for keys whose model carries no comment (the model's own comment wins when it has one).
NOTES = {
    ("MainConfig", "policies"): "Globs, relative to the main file, of the policy files to load.",
    ("ServerConfig", "host"): "Address to listen on; `gateway serve --host` overrides it.",
    ("ServerConfig", "port"): "Port to listen on; `--port` overrides it.",
    ("ServerConfig", "workers"): "Processes sharing the port (SO_REUSEPORT); more than one needs a Redis store.",
    ("ServerConfig", "max_body_bytes"): "Larger request bodies are refused with 413.",
    ("ServerConfig", "max_in_flight"): "Requests served at once by a process, counted once their body has arrived; "
                                       "more are refused with 503 `overloaded` and Retry-After.",
    ("ServerConfig", "connect_timeout_s"): "Connecting to a provider.",
    ("ServerConfig", "first_byte_timeout_s"): "From sending the request to the provider's first byte.",
    ("ServerConfig", "idle_timeout_s"): "Longest silence inside a streamed answer.",
    ("ServerConfig", "total_timeout_s"): "A whole request (504 when exceeded); `[models.ALIAS] timeout_s` overrides it.",
    ("ServerConfig", "drain_timeout_s"): "On SIGTERM, how long in-flight requests may take to finish.",
    ("StoreConfig", "url"): "`memory://` (one process) or `redis://[:password@]host:port/db` (shared by instances).",
    ("StoreConfig", "on_store_error"): "Store unreachable: `closed` refuses requests with 503, `open` serves them "
                                        "under per-process limits.",
    ("StoreConfig", "socket_timeout_s"): "Longest wait for one store round trip.",
    ("StoreConfig", "revocation_grace_s"): "Store unreachable: a key's last answer from the store that it is not "
    "revoked stands this long after it was given; then `on_store_error` decides. A revoked answer always stands.",
    ("ProviderOptions", "type"): "The adapter: one of the types below.",
    ("ProviderOptions", "base_url"): "The API's base URL (with `/v1` for OpenAI-compatible servers).",
    ("ProviderOptions", "api_key_env"): "Name of the environment variable holding the provider's API key.",
    ("ProviderOptions", "headers"): "Extra headers sent with every upstream request.",
    ("ProviderOptions", "connect_timeout_s"): "Overrides `[server]` for this provider (likewise the next three).",
    ("ProviderOptions", "proxy"): "An `http://` proxy (`http://user:pass@host:3128` allowed) for every request of this "
    "provider, instead of `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`; `\"\"` turns proxies off for it. See docs/providers.md, Egress.",
    ("ProviderOptions", "ca_bundle"): "A PEM file of CA certificates that replaces the system trust store for this "
    "provider (a relative path is read from the config file's folder).",
    ("ProviderOptions", "client_cert"): "A PEM client certificate presented to the upstream (mTLS); needs `client_key`.",
    ("ProviderOptions", "client_key"): "The unencrypted PEM private key of `client_cert`.",
    ("MockOptions", "mode"): "`echo` repeats the last user message; `lorem` writes `max_tokens` words.",
    ("MockOptions", "chunks"): "Pieces a streamed answer is cut into.",
    ("MockOptions", "chunk_delay_ms"): "Pause between streamed pieces (for testing slow streams).",
    ("AzureOptions", "api_version"): "The `api-version` query parameter.",
    ("BedrockOptions", "region"): "AWS region of the Bedrock runtime (`us-east-1`); the signing region, and the "
                                  "default endpoint `https://bedrock-runtime.REGION.amazonaws.com` (`base_url` overrides).",
    ("BedrockOptions", "profile"): "A named profile of the AWS shared config and credentials files; unset: the standard "
                                   "chain (environment, files with AWS_PROFILE, SSO, container and instance metadata).",
    ("BedrockOptions", "role_arn"): "An IAM role assumed through STS with the chain's credentials, refreshed before it expires.",
    ("BedrockOptions", "role_session_name"): "The STS session name when assuming `role_arn`.",
    ("ModelConfig", "targets"): "Provider models serving this alias, picked by weight.",
    ("ModelConfig", "fallbacks"): "Other aliases tried, in order, when every target failed.",
    ("ModelConfig", "max_attempts"): "Attempts across this alias's targets before its fallbacks.",
    ("ModelConfig", "shadow"): "Sampled copies of this alias's requests sent to a candidate alias (below).",
    ("ShadowConfig", "alias"): "The candidate: another `[models.ALIAS]`.",
    ("ShadowConfig", "sample"): "Share of requests copied, 0 to 1 (0.05: one in twenty, drawn at random).",
    ("TargetConfig", "provider"): "A `[providers.NAME]` name.",
    ("TargetConfig", "model"): "The model name sent upstream (the Azure deployment for `azure`).",
    ("TargetConfig", "weight"): "Relative share of traffic.",
    ("PriceTable", "input"): "USD per million input tokens.",
    ("PriceTable", "output"): "USD per million output tokens.",
    ("PriceTable", "cached_input"): "USD per million cached input tokens.",
    ("AuditConfig", "enabled"): "Write the audit record of every request.",
    ("AuditConfig", "spool_dir"): "Local, fsynced spool the sinks ship from (relative to the main file).",
    ("KeyRule", "id"): "The key's name in records, metrics, limits (`scope = \"key\"`) and revocation.",
    ("KeyRule", "key_sha256"): "SHA-256 of the secret, hex (`gateway keys create` prints one).",
    ("KeyRule", "key_env"): "Name of an environment variable holding the secret.",
    ("KeyRule", "key"): "The secret itself: demos only.",
    ("KeyRule", "team"): "Team, for limits, budgets, guardrail scopes and cost reports.",
    ("KeyRule", "user"): "User, for limits and records (hashed in records).",
    ("KeyRule", "models"): "Aliases this key may use (empty: all).",
    ("KeyRule", "tags"): "Tags, for `scope = \"tag\"` limits.",
    ("KeyRule", "expires"): "After this date-time the key is refused with 401.",
    ("RateLimitTable", "id"): "Rule id, named in 429 messages (default: its position, `rate_limits[i]`).",
    ("RateLimitTable", "scope"): "What a counter is kept per.",
    ("RateLimitTable", "per"): "`each`: one counter per key/team/...; `shared`: one for all selected requests.",
    ("RateLimitTable", "keys"): "Only these key ids (likewise `teams`, `users`, `models`, `tags`).",
    ("RateLimitTable", "rps"): "Requests per second.",
    ("RateLimitTable", "rpm"): "Requests per minute.",
    ("RateLimitTable", "tpm"): "Tokens (prompt estimate + max_tokens, settled to actual) per minute.",
    ("RateLimitTable", "tpd"): "Tokens per day.",
    ("RateLimitTable", "concurrency"): "Requests in flight at once.",
    ("RateLimitTable", "concurrency_ttl"): "A slot held longer (a crashed gateway) frees itself.",
    ("BudgetTable", "id"): "Rule id, named in 429 messages and by `[[alerts]] type = \"budget\"`.",
    ("BudgetTable", "scope"): "What a counter is kept per.",
    ("BudgetTable", "per"): "`each`: one budget per key/team/...; `shared`: one for all selected requests.",
    ("BudgetTable", "keys"): "Only these key ids (likewise `teams`, `users`, `models`, `tags`).",
    ("BudgetTable", "usd"): "Limit in USD (exactly one of `usd`, `tokens`).",
    ("BudgetTable", "tokens"): "Limit in tokens.",
    ("BudgetTable", "window"): "Calendar day/week/month, or a rolling `period`.",
    ("BudgetTable", "reservation_ttl"): "A request's reservation expires after this if it never settles.",
    ("RuleBase", "id"): "Rule id, in decisions, records and metrics.",
    ("RuleBase", "direction"): "Scan prompts (`input`), answers (`output`) or both.",
    ("RuleBase", "on_error"): "A detector failing: `closed` refuses the request (503), `open` lets it pass.",
    ("PiiRule", "action"): "What happens to a finding.",
    ("PiiRule", "thresholds"): "Per-entity minimum score (0-1).",
    ("PiiRule", "mask_keep_last"): "`mask`: characters left visible at the end.",
    ("PiiRule", "ner"): "Also run the NER model (names, locations); slower.",
    ("PiiRule", "ner_timeout_ms"): "Longest wait for the NER model per scan.",
    ("InjectionRule", "action"): "`block` refuses the request with 400; `flag` records it.",
    ("DenyListRule", "phrases"): "Phrases to find.",
    ("DenyListRule", "whole_words"): "Match only at word boundaries.",
    ("DenyListRule", "action"): "`block` refuses the request (400); `redact` replaces the phrase; `flag` records it.",
    ("AlertTable", "id"): "Alert id, in notifications.",
    ("AlertTable", "type"): "`metric`: a number in /stats; `budget`: a share of a `[[budgets]]` limit; `drift`: the input PSI of an alias (threshold 0.2 unless set).",
    ("AlertTable", "metric"): "",
    ("AlertTable", "severity"): "Carried in the notification (and its colour in Slack).",
}

HEADER = """# Configuration reference

<!-- Generated by scripts/gen_config_docs.py from the schemas that validate the config. Do not edit by
hand: change the model (or its comments) and run `.venv/bin/python scripts/gen_config_docs.py`. -->

One main TOML file plus the policy files its `policies` globs name. Loading has two phases: the raw
tables are validated strictly (an unknown key is an error, values are not coerced), then compiled into
runtime objects (regexes, detectors, providers). A bad file fails with the file, the key and what was
expected, before the gateway serves; on hot reload (SIGHUP or `[server] watch_config`) the old config
keeps running. `gateway check-config --config FILE` validates a file and prints the effective routes;
`--against URL` also shows what would change on a running gateway.

Durations are a number of seconds or a string such as `"500ms"`, `"30s"`, `"15m"`, `"24h"`, `"7d"`.
Secrets are never written in the file: keys name an environment variable (`api_key_env`, `key_env`,
`url_env`, `hash_key_env`).
"""

PROVIDERS_INTRO = """`type` picks the adapter; `base_url` defaults per type; credentials come from the variable named in
`api_key_env`. Timeouts default to the `[server]` ones. See [providers.md](providers.md).
"""

PRICING_INTRO = """USD per million tokens, overlaid on built-in prices for common models. A table named `*` prices any
model not otherwise known.

"""

POLICY_INTRO = """Each policy file holds arrays of tables, in any mix: `[[keys]]`, `[[rate_limits]]`, `[[budgets]]`,
`[[guardrails]]`, `[[alerts]]`. Rule ids must be unique within their table.
"""

LIMITS_INTRO = """A rule selects requests by `scope` (and the optional `keys`, `teams`, `users`, `models`, `tags`
lists), with one counter per key/team/user/model/tag (`per = "each"`) or one shared by all of them
(`per = "shared"`). At least one of `rps`, `rpm`, `tpm`, `tpd`, `concurrency`.

"""

ALERTS_INTRO = """Evaluated in a background task of one worker per gateway instance (over the instance's merged
`/stats`), and of one instance per fleet when the instances share a Redis store (over the fleet's merged
windows); notifications go to webhooks from one bounded queue per destination, so a slow or failing webhook never delays requests or other webhooks.

```toml
[[alerts]]
id = "errors-high"
metric = "windows.5m.error_rate"     # any number in GET /stats, by dotted path
op = ">"
threshold = 0.05
min_requests = 20
for = "2m"
severity = "critical"
runbook = "https://wiki.example.com/runbooks/gateway-errors"
webhooks = [
  { url_env = "SLACK_ALERTS_URL", format = "slack" },
  { url = "http://alertmanager-bridge:8080/hook", format = "json", timeout_s = 3 },
]

[[alerts]]
id = "p95-slow"
window = "5m"
metric = "latency_ms.p95"           # with window: windows.5m.latency_ms.p95
op = ">"
threshold = 8000
for = "5m"
webhooks = [{ url_env = "SLACK_ALERTS_URL", format = "slack" }]

[[alerts]]
id = "ml-team-80"
type = "budget"
budget = "team-monthly"              # the id of a [[budgets]] rule
subject = "ml"                       # whose counter, for a per-team budget
percent = 80
webhooks = [{ url_env = "SLACK_ALERTS_URL", format = "slack" }]
```

Paths of `/stats` that alerts commonly use: `windows.{1m,5m,1h}.{requests,rps,error_rate,rejected_rate}`,
`windows.{1m,5m,1h}.latency_ms.{p50,p95,p99}`, `windows.{1m,5m,1h}.ttft_ms.{p50,p95,p99}`, `in_flight`,
`config.reload_errors`, `usage_1h.by_team.TEAM.cost_usd`. A path that reads nothing (no requests yet, so
no percentile) is "no data": it never fires, and a firing rule that loses its data sends one `no_data`
notification and stays firing until a value shows the condition gone. Values are printed rounded.

"""

ALERTS_DESIGN = """
#### Ready-made budget rules

`type = "budget"` watches one `[[budgets]]` rule by id. At each evaluation it reads that budget's
counter for the current window (the calendar day/week/month in the budget's time zone, or its rolling
period) from the store, through the same key the limits module charges, and computes settled spend
plus the demand the budget refused in the window (each refused request's worst-case estimate), divided
by the limit, in percent; reservations of requests still in flight are not counted. Spend alone stalls
just under the limit once every further request is refused; with the refused demand a 100 % rule fires
as soon as the budget refuses. It fires when that reaches `percent` (the comparison is fixed at `>=`)
and resolves when a new window starts (or a rolling window's spend falls back, and no refusal came
within one rolling period). Because the counter lives in the store, every gateway
sharing a Redis sees the same number. Budgets that count each key/team/user/model/tag apart
(`per = "each"`) need `subject`, the one whose counter to watch; shared and global budgets must not
set it. Typical set: 50 % (`info`), 80 % (`warning`), 100 % (`critical`, the budget now refuses
requests with 429 `budget_exceeded`).

#### Delivery

`format = "json"` posts `{"alert", "status": "firing"|"resolved"|"no_data", "severity", "type", "text", "summary",
"metric", "budget", "subject", "value", "op", "threshold", "for_s", "started_at", "at", "runbook",
"instance"}`; `format = "slack"` posts `{"text", "attachments": [{"color", "title", "fields", "ts"}]}`,
which Slack incoming webhooks and Slack-compatible receivers accept. Each attempt is bounded by
`timeout_s`; connection errors, timeouts, 429 and 5xx are retried with exponential backoff (with jitter)
up to `max_attempts`, other answers are not. Each destination has a queue of 100 notifications; when
it is full the oldest is dropped and logged.

Each gateway process evaluates its own `/stats`: with several workers or instances, metric rules see one
process's traffic and each process notifies on its own. For fleet-wide alerting on metrics use the
Prometheus rules in `deploy/prometheus-rules.yml`; budget rules read the shared store and so agree
across instances (each instance still sends its own notification).
"""


def main(argv: list[str]) -> int:
    text = build()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run scripts/gen_config_docs.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


CACHE_INTRO = """The exact response cache. The key is a digest of the request as it goes upstream (after input
guardrails: a cached answer never bypasses redaction), of the alias and of the caller's namespace (the
API key, unless the rule names a `namespace`), plus a keyed digest (HMAC with the deployment's secret) of
the values input guardrails redacted unless `share_redacted = true`. An answer is stored before
pseudonyms are restored and redacted by the request's output rules, so no value a rule detects is at rest
(a value a `pseudonymize` rule finds in the answer without having made its placeholder is kept as a plain
label such as `<EMAIL_ADDRESS>`: a hit shows the label where the miss's caller saw the value);
a hit is replayed through output guardrails like any answer, as a stream or a whole body in the caller's
API (Chat Completions and Messages; Responses and Embeddings are not cached and get `bypass`). Hits count
against `rps`, `rpm` and `concurrency`, not against `tpm`, `tpd` or budgets (reserved at admission,
settled at zero). The caller's `Cache-Control: no-store` bypasses the cache; `no-cache` skips the lookup
and stores the fresh answer. Every response under a rule carries `x-gateway-cache: hit|miss|bypass`.
Identical concurrent misses make one upstream call per process, and with `store = "shared"` one per
`lock_s` across gateways sharing the Redis store.

"""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


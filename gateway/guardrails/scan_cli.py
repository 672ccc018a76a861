"""`gateway scan`: run the guardrails over JSONL texts offline, to test policies and tune thresholds.

    gateway scan [--config C] [--policy NAME] [--direction input|output] [--ner] < in.jsonl > out.jsonl

Each input line is an object with a "text" string; other fields are kept. Each output line adds
`redacted`, `findings` (Python str offsets into `text`), `injection` (`score`, `flagged`, or null when no
injection rule applies) and `decision` (allow, redact, flag or block). Without --config or --policy it
runs every fast-tier detector (PII, secrets, injection) at default thresholds; --ner adds the NER tier.
Scopes (keys, teams, models) are ignored here: every rule of the chosen direction runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from typing import IO

import orjson

from gateway.config.validate import ConfigError, SourcedRule
from gateway.guardrails.actions import Pseudonyms
from gateway.guardrails.engine import Guardrails, strongest
from gateway.guardrails.policy import InjectionGuard, SpanGuard
from gateway.guardrails.stream_scan import GuardFailed, SpanPlan

DEFAULT_RULES = (
    {"id": "pii", "type": "pii", "action": "redact"},
    {"id": "injection", "type": "injection", "action": "block"},
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gateway scan", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="main config file; its policy files' [[guardrails]] rules are used")
    p.add_argument("--policy", help="a rule id or policy file name (stem) from --config, or a policy TOML file")
    p.add_argument("--direction", choices=("input", "output"), default="input")
    p.add_argument("--ner", action="store_true", help="add the NER tier (names, places, dates)")
    return p


def load_rules(config: str | None, policy: str | None, ner: bool) -> list[SourcedRule]:
    rules: list[SourcedRule] = []
    if config:
        from gateway.config.loader import load_config

        rules = list(load_config(config).rules.get("guardrails", []))
    if policy:
        if os.path.isfile(policy):
            rules = _policy_file_rules(policy)
        elif config:
            stem = lambda f: os.path.splitext(os.path.basename(f))[0]  # noqa: E731
            rules = [r for r in rules if r.data.get("id") == policy or stem(r.file) == policy]
            if not rules:
                raise ConfigError(config, "--policy", f"a rule id or policy file name in the config (no '{policy}')")
        else:
            raise ConfigError(policy, "<file>", "an existing policy file, or --config with a rule id")
    if not config and not policy:
        rules = [SourcedRule("<defaults>", f"guardrails[{i}]", dict(d)) for i, d in enumerate(DEFAULT_RULES)]
    if ner:  # turn the NER tier on for pii rules that take the default entity list
        rules = [SourcedRule(r.file, r.key, {**r.data, "ner": True})
                 if r.data.get("type") == "pii" and "entities" not in r.data else r for r in rules]
    return rules


def _policy_file_rules(path: str) -> list[SourcedRule]:
    try:
        from gateway.config.loader import load_policy_file
    except ImportError:  # the loader is optional for this tool: read the one table ourselves
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        return [SourcedRule(path, f"guardrails[{i}]", r) for i, r in enumerate(data.get("guardrails", []))]
    return list(load_policy_file(path).get("guardrails", []))


class Scanner:
    """The guardrails of one direction, applied to single texts without a request."""

    def __init__(self, guardrails: Guardrails, direction: str) -> None:
        output = direction == "output"
        self.spans = [g for g in guardrails.guards
                      if isinstance(g, SpanGuard) and (g.rule.scans_output if output else g.rule.scans_input)]
        self.injection = [] if output else [g for g in guardrails.guards if isinstance(g, InjectionGuard)]

    def analyze(self, text: str) -> dict:
        plan = SpanPlan(self.spans, Pseudonyms())
        actions: list[str] = []
        try:
            extra = {i: g.detect_slow(text) for i, g in enumerate(plan.guards) if g.has_slow_tier}
            found = plan.find(text, extra)
        except GuardFailed as exc:
            return {"redacted": None, "findings": [], "injection": None, "decision": "block",
                    "error": f"guardrail {exc.guard.id} failed"}
        actions += [plan.guards[h.guard].action.kind for h in found.all()]
        injection = None
        for guard in self.injection:
            score = guard.score(text)
            flagged = score >= guard.threshold
            if injection is None or score > injection["score"]:
                injection = {"score": round(score, 4), "flagged": flagged}
            if flagged:
                actions.append(guard.action)
        return {
            "redacted": plan.apply(text, found.edits),
            "findings": [{"start": h.start, "end": h.end, "entity_type": h.entity_type, "score": round(h.score, 4),
                          "rule": plan.guards[h.guard].id} for h in found.all()],
            "injection": injection,
            "decision": strongest(actions),
        }


def run(scanner: Scanner, lines: IO[bytes], out: IO[bytes], err: IO[str]) -> int:
    status = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            print(f"line {n}: not JSON ({exc})", file=err)
            status = 1
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            print(f"line {n}: expected an object with a \"text\" string", file=err)
            status = 1
            continue
        record.update(scanner.analyze(record["text"]))
        out.write(orjson.dumps(record) + b"\n")
    out.flush()
    return status


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        guardrails = Guardrails.compile(load_rules(args.config, args.policy, args.ner))
    except ConfigError as exc:
        print(f"config error: {exc.file}: {exc.key}: expected {exc.expected}", file=sys.stderr)
        return 2
    return run(Scanner(guardrails, args.direction), sys.stdin.buffer, sys.stdout.buffer, sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())

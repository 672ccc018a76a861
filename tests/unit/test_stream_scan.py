"""The streaming output scanner: a split anywhere gives the unsplit result, and the hold-back stays bounded."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.validate import SourcedRule
from gateway.context import RequestContext
from gateway.errors import PolicyBlocked
from gateway.guardrails.engine import Guardrails
from gateway.guardrails.stream_scan import OVERFLOW_LABEL, SpanPlan, StreamScanner

EVAL = Path(os.environ.get("GATEWAY_EVAL_DIR", Path(__file__).resolve().parents[3] / "shared" / "data" / "eval"))
PII_DEV = EVAL / "pii_dev.jsonl"


def _records() -> list[dict]:
    if not PII_DEV.exists():
        return []
    return [orjson.loads(line) for line in PII_DEV.read_bytes().splitlines() if line.strip()]


RECORDS = _records()
STREAMED = [r for r in RECORDS if "stream_chunks" in r]
needs_data = pytest.mark.skipif(not STREAMED, reason=f"{PII_DEV} not found (set GATEWAY_EVAL_DIR)")


def _ctx(api: str = "chat", body: dict | None = None) -> RequestContext:
    return RequestContext("req", api, "openai", None, 0.0, "trace", "span", body=body)


def _guardrails(*rules: dict) -> Guardrails:
    return Guardrails.compile([SourcedRule("test.toml", f"guardrails[{i}]", r) for i, r in enumerate(rules)])


OUTPUT_PII = _guardrails({"id": "pii", "type": "pii", "action": "redact", "direction": "output"},
                         {"id": "deny", "type": "deny_list", "phrases": ["project falcon"], "action": "redact",
                          "direction": "output"})


def _stream(g: Guardrails, chunks: list[str]) -> tuple[str, int, int]:
    scanner = g.for_request(None, None).output_scanner(_ctx())
    out = "".join(scanner.feed(0, c) for c in chunks) + scanner.flush(0)
    return out, scanner.max_held, scanner.bound


def _reference(g: Guardrails, text: str) -> str:
    return g.for_request(None, None).output_scanner(_ctx()).scan_text(text)


@needs_data
@pytest.mark.parametrize("record", STREAMED, ids=[r["id"] for r in STREAMED])
def test_every_split_point_matches_unsplit(record: dict) -> None:
    text = record["text"]
    expected = _reference(OUTPUT_PII, text)
    assert _stream(OUTPUT_PII, record["stream_chunks"])[0] == expected
    for i in range(1, len(text)):
        out, held, bound = _stream(OUTPUT_PII, [text[:i], text[i:]])
        assert out == expected, f"split at {i}: {text[:i]!r} | {text[i:]!r}"
        assert held <= bound
    assert _stream(OUTPUT_PII, list(text))[0] == expected  # one character per chunk


SUBSET = _guardrails({"id": "cards", "type": "pii", "entities": ["CREDIT_CARD", "PHONE_NUMBER", "US_SSN"],
                      "action": "mask", "direction": "output"})


@needs_data
def test_every_split_point_with_a_subset_of_entities() -> None:
    bad = []
    for record in STREAMED:
        text = record["text"]
        expected = _reference(SUBSET, text)
        for i in range(1, len(text)):
            if _stream(SUBSET, [text[:i], text[i:]])[0] != expected:
                bad.append((record["id"], i))
    assert not bad, f"{len(bad)} splits differ, first {bad[:5]}"


@needs_data
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_chunkings_match_unsplit(data: st.DataObject) -> None:
    record = data.draw(st.sampled_from(STREAMED))
    text = record["text"]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=12)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    out, held, bound = _stream(OUTPUT_PII, chunks)
    assert out == _reference(OUTPUT_PII, text)
    assert held <= bound


def test_obfuscated_email_split_after_the_local_part() -> None:
    text = "reach me at ojohnson [at] hotmail [dot] com now"
    assert _stream(OUTPUT_PII, [text[:21], text[21:]])[0] == _reference(OUTPUT_PII, text)


def test_entity_split_is_redacted() -> None:
    out, _, _ = _stream(OUTPUT_PII, ["write to jane.d", "oe@exam", "ple.com today, card 4111 1111 ", "1111 1111."])
    assert out == "write to <EMAIL_ADDRESS> today, card <CREDIT_CARD>."


def test_deny_list_phrase_split_at_every_point() -> None:
    text = "The plan for Project\nFalcon ships soon."
    expected = "The plan for <DENY_LIST> ships soon."
    for i in range(1, len(text)):
        assert _stream(OUTPUT_PII, [text[:i], text[i:]])[0] == expected


def test_text_is_released_before_the_stream_ends() -> None:
    scanner = OUTPUT_PII.for_request(None, None).output_scanner(_ctx())
    assert scanner.feed(0, "Hello there, ") == "Hello there, "
    assert scanner.feed(0, "my mail is a@b") == "my mail is "  # the address may still be growing
    assert scanner.feed(0, ".com ok") == "<EMAIL_ADDRESS> "
    assert scanner.flush(0) == "ok"


def test_choices_have_independent_state() -> None:
    scanner = OUTPUT_PII.for_request(None, None).output_scanner(_ctx())
    out0 = scanner.feed(0, "mail jane@exa")
    out1 = scanner.feed(1, "no pii here. ")
    out0 += scanner.feed(0, "mple.com now") + scanner.flush(0)
    out1 += scanner.flush(1)
    assert out0 == "mail <EMAIL_ADDRESS> now"
    assert out1 == "no pii here. "


def _pseudonymizing_request(user_text: str):
    g = _guardrails({"id": "p", "type": "pii", "entities": ["EMAIL_ADDRESS", "PHONE_NUMBER"],
                     "action": "pseudonymize"})
    ctx = _ctx(body={"messages": [{"role": "user", "content": user_text}]})
    guard = g.for_request(None, None)
    return guard, ctx


async def test_pseudonym_round_trip_split_at_every_point() -> None:
    guard, ctx = _pseudonymizing_request("Email bob@corp.com and 415-555-0132 about it.")
    await guard.check_input(ctx)
    sent = ctx.body["messages"][0]["content"]
    assert sent == "Email <EMAIL_ADDRESS_1> and <PHONE_NUMBER_1> about it."
    answer = "Sure, I wrote to <EMAIL_ADDRESS_1> and will call <PHONE_NUMBER_1>; <PERSON_9> stays."
    restored = "Sure, I wrote to bob@corp.com and will call 415-555-0132; <PERSON_9> stays."
    assert guard.output_scanner(ctx).scan_text(answer) == restored
    for i in range(1, len(answer)):
        scanner = guard.output_scanner(ctx)
        out = scanner.feed(0, answer[:i]) + scanner.feed(0, answer[i:]) + scanner.flush(0)
        assert out == restored, f"split at {i}"
    scanner = guard.output_scanner(ctx)
    assert "".join(scanner.feed(0, c) for c in answer) + scanner.flush(0) == restored


async def test_pseudonym_restored_into_tool_arguments_as_json() -> None:
    guard, ctx = _pseudonymizing_request("write to jo@corp.com please")
    await guard.check_input(ctx)
    assert ctx.body["messages"][0]["content"] == "write to <EMAIL_ADDRESS_1> please"
    # A value that needs JSON escaping, as a name could (set directly: the fast tier finds no names).
    guard.pseudonyms._by_token["<EMAIL_ADDRESS_1>"] = '"quoted"@corp.com'
    scanner = guard.output_scanner(ctx)
    args = '{"to": "<EMAIL_ADDRESS_1>"}'
    out = scanner.feed_tool_args(0, 0, args[:12]) + scanner.feed_tool_args(0, 0, args[12:])
    out += scanner.flush_tool_args(0, 0)
    assert orjson.loads(out) == {"to": '"quoted"@corp.com'}


def test_block_mid_stream_raises_and_records() -> None:
    g = _guardrails({"id": "no-secrets", "type": "secrets", "action": "block", "direction": "output"})
    ctx = _ctx()
    scanner = g.for_request(None, None).output_scanner(ctx)
    assert scanner.feed(0, "Here is the config. ") == "Here is the config. "
    scanner.feed(0, "token = ghp_abcdefghijklmnopqrstuv")
    with pytest.raises(PolicyBlocked) as info:
        scanner.feed(0, "wxyz0123456789AB\n")
    assert info.value.reason == "guardrail.secret"
    scanner.close()
    blocks = [d for d in ctx.decisions if d.action == "block"]
    assert blocks and blocks[0].direction == "output" and blocks[0].entities == {"SECRET": 1}


def test_hold_back_never_exceeds_the_bound() -> None:
    class Greedy:
        """A detector that always claims the whole text may still be growing."""

        id = "greedy"
        hold_back = 16
        max_entity_len = 16
        has_slow_tier = False

        class action:  # noqa: N801
            kind = "redact"
            changes_text = True

        def detect(self, text: str) -> list:
            return []

        def may_continue(self, text: str) -> int:
            return 0

    scanner = StreamScanner(SpanPlan([Greedy()]), on_block=lambda g, h: None)
    out = ""
    for piece in ["abcdefghij"] * 10:
        out += scanner.feed(0, piece)
        assert scanner.held(0) <= 16
    assert out.count(OVERFLOW_LABEL) >= 1 and "abc" not in out  # fail closed: nothing leaked
    assert scanner.tally.overflow_chars == 100 - scanner.held(0)


def _shared_rules(on_error: str = "closed") -> Guardrails:
    # The bench's pair: two fast-tier PII rules, so one detection pass serves both.
    return _guardrails({"id": "secrets", "type": "secrets", "action": "block", "direction": "output",
                        "on_error": on_error},
                       {"id": "pii", "type": "pii", "entities": ["EMAIL_ADDRESS", "PHONE_NUMBER"],
                        "direction": "output", "on_error": on_error})


SHARED = _shared_rules()


def test_rules_sharing_a_detection_pass_split_at_every_point() -> None:
    assert SHARED.guards[0].shared is SHARED.guards[1].shared is not None
    text = "Mail jane.doe@example.com or call (415) 555-0132 today."
    expected = "Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER> today."
    assert _reference(SHARED, text) == expected
    for i in range(1, len(text)):
        assert _stream(SHARED, [text[:i], text[i:]])[0] == expected, f"split at {i}"
    assert _stream(SHARED, list(text))[0] == expected


@pytest.mark.parametrize("on_error", ["closed", "open"])
def test_a_failing_shared_pass_meets_each_rules_on_error(monkeypatch: pytest.MonkeyPatch, on_error: str) -> None:
    g = _shared_rules(on_error)

    def boom(text: str) -> list:
        raise RuntimeError("detector down")

    monkeypatch.setattr(g.guards[0].shared.detector, "detect", boom)
    ctx = _ctx()
    scanner = g.for_request(None, None).output_scanner(ctx)
    if on_error == "closed":
        with pytest.raises(PolicyBlocked) as info:
            scanner.feed(0, "hello there ")
        assert info.value.status == 503
        return
    assert scanner.feed(0, "hello there ") + scanner.flush(0) == "hello there "
    scanner.close()
    assert [d.policy for d in ctx.decisions if d.reason == "guardrail.error"] == ["secrets", "pii"]

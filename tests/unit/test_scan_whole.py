"""Whole-text scans (non-streamed answers, input rewriting) give what a stream of the same text gives:
the same text out, the same decisions recorded, placeholders restored (JSON-escaped in tool arguments)."""

from __future__ import annotations

import orjson
import pytest

from gateway import reasons
from gateway.config.validate import SourcedRule
from gateway.context import RequestContext
from gateway.errors import PolicyBlocked
from gateway.guardrails.engine import Guardrails


def _ctx(body: dict | None = None) -> RequestContext:
    return RequestContext("req", "chat", "openai", None, 0.0, "trace", "span", body=body)


def _guardrails(*rules: dict) -> Guardrails:
    return Guardrails.compile([SourcedRule("test.toml", f"guardrails[{i}]", r) for i, r in enumerate(rules)])


def _decisions(ctx: RequestContext) -> list[tuple]:
    return [(d.policy, d.action, d.reason, d.direction, d.entities) for d in ctx.decisions]


# Edits, flags and a deny list together, so every kind of span a whole-text scan handles is exercised.
MIXED = _guardrails(
    {"id": "pii", "type": "pii", "entities": ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"], "direction": "output"},
    {"id": "ips", "type": "pii", "entities": ["IP_ADDRESS"], "action": "flag", "direction": "output"},
    {"id": "deny", "type": "deny_list", "phrases": ["project falcon"], "action": "redact", "direction": "output"},
)
TEXTS = [
    "Hello there, this is a canned answer from the upstream.",
    "Mail jane.doe@example.com or call 415-555-0132; card 4111 1111 1111 1111.",
    "The host 10.20.30.40 runs Project Falcon, ask a@b.co.",
    "Only a flagged host: 192.168.1.7",
]


def _whole(g: Guardrails, text: str, guard=None, ctx=None, tool_args: bool = False) -> tuple[str, list]:
    ctx = ctx if ctx is not None else _ctx()
    scanner = (guard or g.for_request(None, None)).output_scanner(ctx)
    out = scanner.scan_tool_args(text) if tool_args else scanner.scan_text(text)
    scanner.close()
    return out, _decisions(ctx)


def _streamed(g: Guardrails, chunks: list[str], guard=None, ctx=None, tool_args: bool = False) -> tuple[str, list]:
    ctx = ctx if ctx is not None else _ctx()
    scanner = (guard or g.for_request(None, None)).output_scanner(ctx)
    if tool_args:
        out = "".join(scanner.feed_tool_args(0, 0, c) for c in chunks)
        out += "".join(scanner.flush_tool_args(0, i) for i in scanner.open_tool_calls(0))
    else:
        out = "".join(scanner.feed(0, c) for c in chunks) + scanner.flush(0)
    scanner.close()
    return out, _decisions(ctx)


def _chunkings(text: str) -> list[list[str]]:
    half = len(text) // 2
    return [[text], [text[:half], text[half:]], list(text)]


@pytest.mark.parametrize("text", TEXTS)
def test_whole_text_equals_its_stream(text: str) -> None:
    whole = _whole(MIXED, text)
    for chunks in _chunkings(text):
        assert _streamed(MIXED, chunks) == whole


def test_whole_text_records_each_kind() -> None:
    out, decisions = _whole(MIXED, TEXTS[2])
    assert out == "The host 10.20.30.40 runs <DENY_LIST>, ask <EMAIL_ADDRESS>."
    assert decisions == [
        ("pii", "redact", reasons.PII_DETECTED, "output", {"EMAIL_ADDRESS": 1}),
        ("ips", "flag", reasons.PII_DETECTED, "output", {"IP_ADDRESS": 1}),
        ("deny", "redact", reasons.DENY_LIST_MATCH, "output", {"DENY_LIST": 1}),
    ]


def test_unedited_text_comes_back_as_the_same_object() -> None:
    scanner = MIXED.for_request(None, None).output_scanner(_ctx())
    text = TEXTS[0]
    assert scanner.scan_text(text) is text
    assert scanner.scan_tool_args('{"q": "plain"}') == '{"q": "plain"}'
    flagged = TEXTS[3]
    assert scanner.scan_text(flagged) is flagged  # a flag notes the span, the text is unchanged


def test_block_in_whole_text_equals_its_stream() -> None:
    g = _guardrails({"id": "no-secrets", "type": "secrets", "action": "block", "direction": "output"})
    text = "Here it is: token = ghp_abcdefghijklmnopqrstuvwxyz0123456789AB\nbye"
    results = []
    for scan in (lambda s: s.scan_text(text), lambda s: s.feed(0, text) + s.flush(0)):
        ctx = _ctx()
        scanner = g.for_request(None, None).output_scanner(ctx)
        with pytest.raises(PolicyBlocked) as info:
            scan(scanner)
        scanner.close()
        results.append((info.value.reason, _decisions(ctx)))
    assert results[0] == results[1]
    assert results[0][1] == [("no-secrets", "block", reasons.SECRET_DETECTED, "output", {"SECRET": 1})]


PSEUDO = _guardrails(
    {"id": "p", "type": "pii", "entities": ["EMAIL_ADDRESS"], "action": "pseudonymize"},
    {"id": "phones", "type": "pii", "entities": ["PHONE_NUMBER"], "action": "redact", "direction": "output"},
)


async def _pseudonymized():
    ctx = _ctx({"messages": [{"role": "user", "content": "Write to bob@corp.com and jo@corp.com."}]})
    guard = PSEUDO.for_request(None, None)
    await guard.check_input(ctx)
    assert ctx.body["messages"][0]["content"] == "Write to <EMAIL_ADDRESS_1> and <EMAIL_ADDRESS_2>."
    return guard


async def test_restore_in_whole_text_equals_its_stream() -> None:
    guard = await _pseudonymized()
    answer = "Sent to <EMAIL_ADDRESS_2>, cc <EMAIL_ADDRESS_1>, not <EMAIL_ADDRESS_3>; call 415-555-0132."
    whole = _whole(PSEUDO, answer, guard)
    assert whole[0] == "Sent to jo@corp.com, cc bob@corp.com, not <EMAIL_ADDRESS_3>; call <PHONE_NUMBER>."
    for chunks in _chunkings(answer):
        assert _streamed(PSEUDO, chunks, guard) == whole


async def test_restore_in_whole_tool_args_equals_its_stream() -> None:
    guard = await _pseudonymized()
    guard.pseudonyms._by_token["<EMAIL_ADDRESS_1>"] = '"bob"\\corp@corp.com'  # needs JSON escaping
    args = '{"to": "<EMAIL_ADDRESS_1>", "cc": "<EMAIL_ADDRESS_2>", "phone": "415-555-0132"}'
    whole = _whole(PSEUDO, args, guard, tool_args=True)
    assert orjson.loads(whole[0]) == {"to": '"bob"\\corp@corp.com', "cc": "jo@corp.com", "phone": "<PHONE_NUMBER>"}
    for chunks in _chunkings(args):
        assert _streamed(PSEUDO, chunks, guard, tool_args=True) == whole
    # The answer's text is restored as it is, not JSON-escaped.
    assert _whole(PSEUDO, "to <EMAIL_ADDRESS_1>", guard)[0] == 'to "bob"\\corp@corp.com'


async def test_a_failing_rule_is_recorded_once_per_direction(monkeypatch: pytest.MonkeyPatch) -> None:
    g = _guardrails({"id": "o", "type": "pii", "entities": ["EMAIL_ADDRESS"], "on_error": "open"})

    def boom(text: str) -> list:
        raise RuntimeError("detector down")

    monkeypatch.setattr(g.guards[0], "detect", boom)
    ctx = _ctx({"messages": [{"role": "user", "content": "a@b.co"}, {"role": "user", "content": "c@d.co"}]})
    guard = g.for_request(None, None)
    await guard.check_input(ctx)
    scanner = guard.output_scanner(ctx)
    assert scanner.scan_text("e@f.co") == "e@f.co"
    assert scanner.scan_tool_args('{"to": "g@h.co"}') == '{"to": "g@h.co"}'
    scanner.close()
    assert _decisions(ctx) == [("o", "allow", reasons.GUARDRAIL_ERROR, "input", {}),
                               ("o", "allow", reasons.GUARDRAIL_ERROR, "output", {})]
    # The next request starts without the failures of this one.
    ctx2 = _ctx({"messages": [{"role": "user", "content": "hi"}]})
    monkeypatch.undo()
    guard2 = g.for_request(None, None)
    await guard2.check_input(ctx2)
    scanner2 = guard2.output_scanner(ctx2)
    scanner2.scan_text("hello")
    scanner2.close()
    assert _decisions(ctx2) == []

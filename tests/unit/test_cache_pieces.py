"""Pure pieces of the response cache: the memory store's bounds and expiry, the key, Cache-Control,
the entry format's compaction and round trip."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cache import entry
from gateway.cache.key import cache_key, redacted_digest
from gateway.cache.rules import access, deterministic
from gateway.config.schema import CacheRule
from gateway.cache.stores import MemoryEntries
from gateway.config.validate import SourcedRule
from gateway.context import Usage
from gateway.filters.cache_fill import CacheFill
from gateway.guardrails.engine import Guardrails
from gateway.events import Finish, PartEnd, TextDelta, ToolCallDelta


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_memory_entries_are_lru_bounded_in_count_and_bytes_and_expire():
    clock = Clock()
    m = MemoryEntries(max_entries=2, max_bytes=10, clock=clock)
    await m.put("a", b"1234", 5)
    await m.put("b", b"1234", 5)
    assert await m.get("a") == b"1234"  # a is now the most recent
    await m.put("c", b"12", 5)
    assert await m.get("b") is None and await m.get("a") == b"1234" and len(m) == 2
    await m.put("d", b"12345678", 5)  # over 10 bytes with a: a goes
    assert await m.get("a") is None and m.bytes <= 10
    clock.now += 5
    assert await m.get("d") is None, "expired"
    await m.put("big", b"x" * 11, 5)
    assert await m.get("big") is None, "an entry larger than the store is not kept"


def test_key_separates_api_alias_namespace_and_redacted_values_but_not_stream():
    body = {"model": "m", "messages": [{"role": "user", "content": "<EMAIL_ADDRESS>"}], "temperature": 0}
    base = cache_key("chat", "m", "key:a", body, b"")
    assert cache_key("chat", "m", "key:a", {**body, "stream": True, "stream_options": {"include_usage": True}}, b"") == base
    assert cache_key("chat", "m", "key:a", dict(reversed(list(body.items()))), b"") == base
    assert cache_key("messages", "m", "key:a", body, b"") != base
    assert cache_key("chat", "n", "key:a", body, b"") != base
    assert cache_key("chat", "m", "key:b", body, b"") != base
    ann = redacted_digest(b"s" * 32, ["mail ann@x.io"], ["mail <EMAIL_ADDRESS>"])
    bob = redacted_digest(b"s" * 32, ["mail bob@x.io"], ["mail <EMAIL_ADDRESS>"])
    assert ann and bob and ann != bob
    assert redacted_digest(b"t" * 32, ["mail ann@x.io"], ["mail <EMAIL_ADDRESS>"]) != ann, "keyed by the secret"
    assert redacted_digest(b"s" * 32, ["same"], ["same"]) == b""
    assert cache_key("chat", "m", "key:a", body, ann) != cache_key("chat", "m", "key:a", body, bob)


def test_cache_control():
    assert (access(None).read, access(None).write) == (True, True)
    assert (access("no-store").read, access("no-store").write) == (False, False)
    assert (access("No-Cache").read, access("No-Cache").write) == (False, True)
    assert (access("max-age=0").read, access("max-age=0").write) == (False, True)
    assert (access("max-age=60").read, access("max-age=60").write) == (True, True)


def test_entry_compacts_split_pieces_and_round_trips():
    events = [TextDelta(0, "Your SSN is 123-"), TextDelta(0, "45-6789."), PartEnd(0),
              ToolCallDelta(0, 0, "call_1", "f", '{"a":'), ToolCallDelta(0, 0, arguments=' 1}'), PartEnd(0, 0),
              Finish(0, "tool_calls")]
    compact = entry.compact(events)
    assert compact[0] == TextDelta(0, "Your SSN is 123-45-6789.")
    assert compact[2] == ToolCallDelta(0, 0, "call_1", "f", '{"a": 1}')
    e = entry.Entry("m", "p", Usage(5, 9, 1), 0.5, compact)
    back = entry.loads(entry.dumps(e))
    assert back is not None and back.events == compact and back.usage == Usage(5, 9, 1) and back.cost_usd == 0.5
    assert entry.loads(b"not json") is None and entry.loads(b'{"v": 99}') is None


def test_deterministic_enough():
    rule = CacheRule(id="c")
    assert deterministic(rule, "chat", {"temperature": 0})
    assert not deterministic(rule, "chat", {}), "no temperature: the providers' default 1.0"
    assert not deterministic(rule, "chat", {"temperature": 0.2})
    assert not deterministic(rule, "chat", {"temperature": 0, "n": 2}), "several choices are not replayed"
    assert not deterministic(rule, "chat", {"temperature": "0"})
    assert deterministic(rule, "embeddings", {})
    assert deterministic(CacheRule(id="c", max_temperature=1.0), "messages", {})


# Redact rules on output and a pseudonymize rule (kept at rest as a plain label).
PII_AT_REST = Guardrails.compile([
    SourcedRule("t.toml", "guardrails[0]", {"id": "ssn", "type": "pii", "entities": ["US_SSN"], "direction": "output"}),
    SourcedRule("t.toml", "guardrails[1]", {"id": "mail", "type": "pii", "entities": ["EMAIL_ADDRESS"],
                                            "action": "pseudonymize", "direction": "both"}),
])
SECRET_TEXT = "My SSN is 123-45-6789, mail ann.lee@example.com before noon."


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(SECRET_TEXT) - 1), max_size=8, unique=True))
def test_an_answer_kept_at_rest_has_no_detected_value_however_it_was_split(cuts):
    """The fill collects the pieces as streamed; compacted and redacted at rest they read as the whole text
    redacted once, so a value split across chunks is never stored."""
    guard = PII_AT_REST.for_request(None, None)
    assert guard is not None
    fill = CacheFill(1 << 20)
    bounds = [0, *sorted(cuts), len(SECRET_TEXT)]
    for a, b in zip(bounds, bounds[1:]):
        fill.on_text(TextDelta(0, SECRET_TEXT[a:b]))
    fill.on_part_end(Finish(0, "stop"))
    events = entry.compact(fill.events)

    def scrub(text: str) -> str:
        kept = guard.redact_at_rest(text)
        assert kept is not None
        return kept

    entry.redact_at_rest(events, scrub)
    stored = entry.dumps(entry.Entry("m", "p", Usage(), 0.0, events))
    assert b"6789" not in stored and b"ann.lee" not in stored
    assert events[0] == TextDelta(0, "My SSN is <US_SSN>, mail <EMAIL_ADDRESS> before noon.")


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(min_size=0, max_size=120), min_size=1, max_size=4),
       args=st.text(min_size=0, max_size=120))
def test_a_streamed_hit_is_cut_into_small_pieces_that_join_back(texts, args):
    from gateway.cache.replay import PIECE_CHARS, pieces

    events = [TextDelta(0, t) for t in texts] + [ToolCallDelta(0, 0, "call_1", "lookup", args), PartEnd(0, 0),
                                                 Finish(0, "tool_calls")]
    out = pieces(events)
    got_texts = [e.text for e in out if isinstance(e, TextDelta)]
    calls = [e for e in out if isinstance(e, ToolCallDelta)]
    assert "".join(got_texts) == "".join(texts)
    assert all(len(t) <= PIECE_CHARS for t in got_texts)
    assert "".join(c.arguments for c in calls) == args
    assert (calls[0].id, calls[0].name) == ("call_1", "lookup")
    assert all(c.id is None and c.name is None for c in calls[1:])
    assert out[-2:] == events[-2:]


async def test_a_replay_stream_yields_groups_of_pieces():
    from gateway.cache.replay import GROUP, PIECE_CHARS, ReplayStream

    from gateway.context import RequestContext

    ctx = RequestContext(request_id="r1", api="chat", shape="openai", runtime=None, received_at=0.0, trace_id="t",
                         span_id="s")
    ctx.stream = ctx.include_usage = True
    e = entry.Entry("m", "p", Usage(1, 2, 0), 0.0, [TextDelta(0, "x" * (PIECE_CHARS * 40)), PartEnd(0), Finish(0, "stop")])
    stream = ReplayStream(ctx, e, None)
    groups = [g async for g in stream.iter_chunks()]
    assert len(groups) >= 40 // GROUP and all(len(g) <= GROUP for g in groups)
    writes = [stream.feed(unit) for g in groups for unit in stream.framer.feed(g)]
    writes.append(stream.finish())
    stream.close()
    assert len(writes) == len(groups) + 1 and all(len(w) < 4096 for w in writes)
    sse = b"".join(writes)
    assert sse.count(b'"content":"' + b"x" * PIECE_CHARS + b'"') == 40 and sse.endswith(b"data: [DONE]\n\n")
    assert b'"prompt_tokens":1' in sse, "the usage the answer had reaches the caller"
    assert (ctx.usage.input_tokens, ctx.usage.output_tokens) == (0, 0), "the hit itself spent nothing"

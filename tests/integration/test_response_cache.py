"""The exact response cache (#18) through the official SDKs over real sockets, against a fake upstream that
counts its calls: hits reach no upstream, streamed or not, in both caller APIs over both provider wires;
answers stay redacted on a hit and at rest; keys, namespaces, redacted values, Cache-Control, limits,
single flight and the Redis store's TTLs."""

from __future__ import annotations

import asyncio
import textwrap

import anthropic
import httpx
import openai
import orjson
import pytest

from gateway.config.loader import load_config
from gateway.config.validate import ConfigError
from gateway.runtime import Services, compile_runtime
from tests.support.fake_upstream import Reply
from tests.support.gateway import OTHER_KEY, TEST_KEY, base_config, sha

HELLO = "Hello! How can I help you today?"
ANTHROPIC = """
[providers.ant]
type = "anthropic"
base_url = "{url}/v1"
api_key_env = "TEST_UPSTREAM_KEY"

[models.claude]
targets = [{{ provider = "ant", model = "claude-sonnet-4-5" }}]
"""
THIRD_KEY = "sk-third-0123456789"
KEYS = f"""
[[keys]]
id = "test"
key_sha256 = "{sha(TEST_KEY)}"
team = "team-a"

[[keys]]
id = "other"
key_sha256 = "{sha(OTHER_KEY)}"
team = "team-b"

[[keys]]
id = "third"
key_sha256 = "{sha(THIRD_KEY)}"
team = "team-b"
"""
CACHE = """
[[cache]]
id = "exact"
ttl_s = 60
"""
PII = """
[[guardrails]]
id = "pii"
type = "pii"
entities = ["US_SSN", "EMAIL_ADDRESS"]
action = "redact"
direction = "both"
"""
PSEUDO = """
[[guardrails]]
id = "emails"
type = "pii"
entities = ["EMAIL_ADDRESS"]
action = "pseudonymize"
direction = "both"
"""
MSGS = [{"role": "user", "content": "Say hello."}]


def start(make_gateway, upstream, cache: str = CACHE, extra: str = "", policies: dict[str, str] | None = None,
          store: str = ""):
    main = base_config(upstream.url, ANTHROPIC.format(url=upstream.url) + extra)
    if store:
        main += f'\n[store]\nurl = "{store}"\n'
    return make_gateway(main=main, policies={"keys.toml": KEYS, "cache.toml": cache, **(policies or {})})


def chat(gw, key: str = TEST_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0)


def messages(gw, key: str = TEST_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)


def ask_chat(gw, *, stream: bool, alias: str = "gpt", key: str = TEST_KEY, content: str = "Say hello.",
             headers: dict[str, str] | None = None, **kw) -> tuple[str, str]:
    """(answer text, x-gateway-cache) of one chat request."""
    msgs = [{"role": "user", "content": content}]
    kw.setdefault("temperature", 0)
    raw = chat(gw, key).chat.completions.with_raw_response.create(model=alias, messages=msgs, stream=stream,
                                                                  extra_headers=headers or {}, **kw)
    if not stream:
        return raw.parse().choices[0].message.content or "", raw.headers.get("x-gateway-cache", "")
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    return text, raw.headers.get("x-gateway-cache", "")


def ask_messages(gw, *, stream: bool, alias: str = "claude", content: str = "Say hello.") -> tuple[str, str]:
    msgs = [{"role": "user", "content": content}]
    client = messages(gw)
    if not stream:
        raw = client.messages.with_raw_response.create(model=alias, max_tokens=100, messages=msgs, extra_body={"temperature": 0})
        return "".join(b.text for b in raw.parse().content if b.type == "text"), raw.headers.get("x-gateway-cache", "")
    with client.messages.stream(model=alias, max_tokens=100, messages=msgs, extra_body={"temperature": 0}) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
        header = s.response.headers.get("x-gateway-cache", "")
    assert final.stop_reason == "end_turn"
    return text, header


@pytest.mark.parametrize("caller,alias", [("chat", "gpt"), ("chat", "claude"), ("messages", "claude"),
                                          ("messages", "gpt")])
def test_repeat_is_served_from_cache_streamed_and_whole(make_gateway, upstream, caller, alias):
    gw = start(make_gateway, upstream)
    ask = ask_chat if caller == "chat" else ask_messages
    assert ask(gw, stream=False, alias=alias) == (HELLO, "miss")
    assert ask(gw, stream=False, alias=alias) == (HELLO, "hit")
    assert ask(gw, stream=True, alias=alias) == (HELLO, "hit"), "a streamed request is answered from the entry as a stream"
    assert len(upstream.requests) == 1


def test_a_streamed_miss_fills_the_entry_for_whole_requests(make_gateway, upstream):
    gw = start(make_gateway, upstream)
    assert ask_chat(gw, stream=True) == (HELLO, "miss")
    assert ask_chat(gw, stream=True) == (HELLO, "hit")
    assert ask_chat(gw, stream=False) == (HELLO, "hit")
    assert len(upstream.requests) == 1


def test_hit_reports_usage_and_records_saved_usd(make_gateway, upstream, monkeypatch):
    from gateway.records import recorder

    records: list[dict] = []
    build = recorder.build_record

    def capture(*args, **kw):
        records.append(build(*args, **kw))
        return records[-1]

    monkeypatch.setattr(recorder, "build_record", capture)
    pricing = '\n[pricing."gpt-4o-mini"]\ninput = 1.0\noutput = 2.0\n'
    gw = start(make_gateway, upstream, extra=pricing)
    first = chat(gw).chat.completions.create(model="gpt", messages=MSGS, temperature=0)
    second = chat(gw).chat.completions.create(model="gpt", messages=MSGS, temperature=0)
    assert second.usage.prompt_tokens == first.usage.prompt_tokens == 1830
    assert second.usage.completion_tokens == first.usage.completion_tokens == 10
    miss, hit = records[-2:]
    assert (miss["cache"], miss["cache_saved_usd"], miss["model"]) == ("miss", 0.0, "gpt-4o-mini")
    assert miss["cost_usd"] > 0 and miss["input_tokens"] == 1830
    assert hit["cache"] == "hit" and hit["cache_saved_usd"] == miss["cost_usd"]
    assert (hit["cost_usd"], hit["input_tokens"], hit["output_tokens"], hit["provider"]) == (0.0, 0, 0, None)
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'gateway_cache_requests_total{alias="gpt",outcome="hit"} 1.0' in metrics
    assert 'gateway_cache_requests_total{alias="gpt",outcome="miss"} 1.0' in metrics
    saved = [line for line in metrics.splitlines() if line.startswith('gateway_cache_saved_usd_total{alias="gpt"}')]
    assert saved and float(saved[0].split()[-1]) > 0


SSN_ANSWER = "Your SSN is 123-45-6789, keep it safe."


def _sse_answer(text: str) -> bytes:
    pieces = [text[i:i + 5] for i in range(0, len(text), 5)]  # the SSN split across chunks
    events = [{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
    events.append({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
                   "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}})
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def _json_answer(text: str) -> bytes:
    return orjson.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}})


def _redis_values(url: str) -> dict[bytes, tuple[bytes, int]]:
    """Every key of the test's Redis with its value (strings) and TTL in ms, read over a plain socket."""
    import redis

    r = redis.Redis.from_url(url)
    try:
        return {k: (r.get(k) or b"", r.pttl(k)) for k in r.scan_iter("gw:cache*") if r.type(k) == b"string"}
    finally:
        r.close()


@pytest.mark.parametrize("first_stream", [False, True])
def test_pii_in_the_answer_is_redacted_on_miss_and_hit_and_at_rest(make_gateway, upstream, redis_url, first_stream):
    cache = CACHE.replace('ttl_s = 60', 'ttl_s = 60\nstore = "shared"')
    gw = start(make_gateway, upstream, cache=cache, policies={"guardrails.toml": PII}, store=redis_url)
    upstream.push(Reply(sse=_sse_answer(SSN_ANSWER)) if first_stream else Reply(body=_json_answer(SSN_ANSWER)))
    expected = "Your SSN is <US_SSN>, keep it safe."
    assert ask_chat(gw, stream=first_stream) == (expected, "miss")
    assert ask_chat(gw, stream=not first_stream) == (expected, "hit")
    assert ask_chat(gw, stream=first_stream) == (expected, "hit")
    assert len(upstream.requests) == 1
    stored = _redis_values(redis_url)
    assert stored, "the entry is in the shared store"
    for value, ttl in stored.values():
        assert b"123-45-6789" not in value and b"6789" not in value
        assert 0 < ttl <= 60_000, "every entry expires"


LONG_ANSWER = ("Here is what I found. " * 8) + "Your SSN is 123-45-6789, keep it safe. " + ("Anything else? " * 6)


@pytest.mark.parametrize("caller", ["chat", "messages"])
def test_a_streamed_hit_is_a_stream_of_many_chunks_equal_to_the_miss(make_gateway, upstream, caller):
    """A streamed hit arrives as an SSE stream of many pieces in the caller's format (not one event holding
    the whole text), through the hit's output guardrails: the text the SDK assembles is the miss's, redacted."""
    gw = start(make_gateway, upstream, policies={"guardrails.toml": PII})
    upstream.push(Reply(sse=_sse_answer(LONG_ANSWER)))
    expected = LONG_ANSWER.replace("123-45-6789", "<US_SSN>")

    def streamed() -> tuple[list[str], str]:
        msgs = [{"role": "user", "content": "Say hello."}]
        if caller == "chat":
            raw = chat(gw).chat.completions.with_raw_response.create(model="gpt", messages=msgs, stream=True,
                                                                     temperature=0)
            parts = [c.choices[0].delta.content for c in raw.parse() if c.choices and c.choices[0].delta.content]
            return parts, raw.headers["x-gateway-cache"]
        with messages(gw).messages.stream(model="gpt", max_tokens=400, messages=msgs,
                                          extra_body={"temperature": 0}) as s:
            parts = [p for p in s.text_stream if p]
            assert s.get_final_message().stop_reason == "end_turn"
            return parts, s.response.headers["x-gateway-cache"]

    miss, outcome = streamed()
    assert ("".join(miss), outcome) == (expected, "miss")
    hit, outcome = streamed()
    assert ("".join(hit), outcome) == (expected, "hit")
    assert len(hit) >= len(expected) // 30, f"{len(hit)} text chunks for {len(expected)} characters"
    assert "<US_SSN>" in "".join(hit) and "6789" not in "".join(hit)
    assert len(upstream.requests) == 1


def test_a_long_streamed_hit_is_relayed_piece_by_piece_on_the_wire(make_gateway, upstream):
    """On the wire (plain HTTP, no SDK): a 10,000-character hit is hundreds of SSE events ending in [DONE],
    each of a few characters, equal to the miss's text."""
    gw = start(make_gateway, upstream)
    upstream.push(Reply(sse=_sse_answer("word " * 2000)))
    body = {"model": "gpt", "messages": MSGS, "temperature": 0, "stream": True}
    headers = {"authorization": f"Bearer {TEST_KEY}"}
    with httpx.stream("POST", gw.v1 + "/chat/completions", json=body, headers=headers) as r:
        assert r.headers["x-gateway-cache"] == "miss"
        miss = b"".join(r.iter_raw())
    with httpx.stream("POST", gw.v1 + "/chat/completions", json=body, headers=headers) as r:
        assert r.headers["x-gateway-cache"] == "hit"
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    texts = [orjson.loads(e[6:])["choices"][0]["delta"].get("content") for e in events if e != "data: [DONE]"
             and orjson.loads(e[6:])["choices"]]
    assert "".join(t for t in texts if t) == "word " * 2000
    assert len([t for t in texts if t]) >= 10_000 // 24
    assert events[-1] == "data: [DONE]" and miss.endswith(b"data: [DONE]\n\n")


def test_pseudonyms_are_cached_unrestored_and_restored_per_caller(make_gateway, upstream, redis_url):
    """share_redacted = true: prompts differing only in a pseudonymized email share the entry; each caller
    gets its own email back, and neither email is at rest."""
    cache = CACHE.replace('ttl_s = 60', 'ttl_s = 60\nstore = "shared"\nshare_redacted = true')
    gw = start(make_gateway, upstream, cache=cache, policies={"guardrails.toml": PSEUDO}, store=redis_url)
    upstream.push(Reply(body=_json_answer("I will write to <EMAIL_ADDRESS_1> today, cc carol@example.net.")))
    # A pseudonymize rule's output side only restores its own placeholders: the miss's caller sees the new
    # address the model wrote; at rest it is a plain label, which is what a hit then shows.
    assert ask_chat(gw, stream=False, content="Write to ann@example.com") == (
        "I will write to ann@example.com today, cc carol@example.net.", "miss")
    assert ask_chat(gw, stream=True, content="Write to bob@example.org") == (
        "I will write to bob@example.org today, cc <EMAIL_ADDRESS>.", "hit")
    assert len(upstream.requests) == 1
    values = _redis_values(redis_url).values()
    assert values
    for value, _ in values:
        assert b"<EMAIL_ADDRESS_1>" in value
        assert b"ann@example.com" not in value and b"bob@example.org" not in value and b"carol@" not in value


def test_different_redacted_values_do_not_share_an_entry(make_gateway, upstream):
    gw = start(make_gateway, upstream, policies={"guardrails.toml": PII})
    assert ask_chat(gw, stream=False, content="Mail ann@example.com")[1] == "miss"
    assert ask_chat(gw, stream=False, content="Mail bob@example.org")[1] == "miss"
    assert ask_chat(gw, stream=False, content="Mail ann@example.com")[1] == "hit"
    assert len(upstream.requests) == 2
    # Both went upstream as the same redacted prompt: only the keyed digest of the values told them apart.
    assert upstream.requests[0].body["messages"] == upstream.requests[1].body["messages"]


def test_keys_do_not_share_entries_unless_a_namespace_says_so(make_gateway, upstream):
    gw = start(make_gateway, upstream)
    assert ask_chat(gw, stream=False, key=TEST_KEY)[1] == "miss"
    assert ask_chat(gw, stream=False, key=OTHER_KEY)[1] == "miss"
    assert len(upstream.requests) == 2
    shared = CACHE.replace('ttl_s = 60', 'ttl_s = 60\nteams = ["team-b"]\nnamespace = "team-b"') + CACHE.replace(
        '"exact"', '"rest"')
    gw2 = start(make_gateway, upstream, cache=shared)
    assert ask_chat(gw2, stream=False, key=OTHER_KEY)[1] == "miss"
    assert ask_chat(gw2, stream=False, key=THIRD_KEY)[1] == "hit"  # same team namespace
    assert ask_chat(gw2, stream=False, key=TEST_KEY)[1] == "miss"  # another rule: per key
    assert len(upstream.requests) == 4


def test_cache_control_no_store_and_no_cache(make_gateway, upstream):
    gw = start(make_gateway, upstream)
    assert ask_chat(gw, stream=False, headers={"Cache-Control": "no-store"})[1] == "bypass"
    assert ask_chat(gw, stream=False)[1] == "miss", "no-store kept nothing"
    assert ask_chat(gw, stream=False, headers={"Cache-Control": "no-cache"})[1] == "bypass"
    assert len(upstream.requests) == 3, "no-cache did not read the entry"
    upstream.push(Reply(body=_json_answer("fresh answer")))
    assert ask_chat(gw, stream=False, headers={"Cache-Control": "no-cache"}) == ("fresh answer", "bypass")
    assert ask_chat(gw, stream=False) == ("fresh answer", "hit"), "no-cache stored the fresh answer"
    assert len(upstream.requests) == 4


def test_only_deterministic_requests_are_cached_by_default(make_gateway, upstream):
    gw = start(make_gateway, upstream)
    assert ask_chat(gw, stream=False, temperature=0.7)[1] == "bypass"
    assert ask_chat(gw, stream=False, temperature=0.7)[1] == "bypass"
    raw = chat(gw).chat.completions.with_raw_response.create(model="gpt", messages=MSGS)  # no temperature: 1.0
    assert raw.headers["x-gateway-cache"] == "bypass"
    assert len(upstream.requests) == 3
    warm = CACHE.replace('ttl_s = 60', 'ttl_s = 60\nmax_temperature = 1.0')
    gw2 = start(make_gateway, upstream, cache=warm)
    assert ask_chat(gw2, stream=False, temperature=0.7)[1] == "miss"
    assert ask_chat(gw2, stream=False, temperature=0.7)[1] == "hit"


def test_no_rule_no_header(make_gateway, upstream):
    gw = start(make_gateway, upstream, cache=CACHE.replace('ttl_s = 60', 'ttl_s = 60\nmodels = ["claude"]'))
    raw = chat(gw).chat.completions.with_raw_response.create(model="gpt", messages=MSGS, temperature=0)
    assert "x-gateway-cache" not in raw.headers
    raw = chat(gw).chat.completions.with_raw_response.create(model="gpt", messages=MSGS, temperature=0)
    assert len(upstream.requests) == 2


def test_rpm_counts_a_hit_and_tpm_and_budgets_do_not(make_gateway, upstream):
    limits = """
[[rate_limits]]
id = "per-key"
scope = "key"
rpm = 4

[[rate_limits]]
id = "tokens"
scope = "key"
tpm = 4000

[[budgets]]
id = "daily-tokens"
scope = "key"
tokens = 4000
window = "day"
"""
    gw = start(make_gateway, upstream, policies={"limits.toml": limits})
    # Each answer used 1840 tokens when fetched: two misses' worth fit in the tpm and the budget, three do not.
    assert ask_chat(gw, stream=False, max_tokens=50)[1] == "miss"
    for _ in range(3):
        assert ask_chat(gw, stream=False, max_tokens=50)[1] == "hit"  # 3 x 1840 would be over the tpm
    with pytest.raises(openai.RateLimitError) as err:
        ask_chat(gw, stream=False, max_tokens=50)
    assert "rpm" in str(err.value) or "requests" in str(err.value)
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("limit", ["budget", "tpm", "usd"])
def test_a_key_out_of_budget_still_gets_its_hits_while_a_miss_is_refused(make_gateway, upstream, limit):
    """tpm, tpd and budgets are reserved only once the lookup missed: a hit spends nothing, so a key whose
    token budget (or tpm, or USD budget) is used up still gets it, and a miss is refused before the upstream."""
    rules = {
        "budget": '[[budgets]]\nid = "daily-tokens"\nscope = "key"\ntokens = 2000\nwindow = "day"\n',
        "tpm": '[[rate_limits]]\nid = "tokens"\nscope = "key"\ntpm = 2000\n',
        "usd": '[[budgets]]\nid = "daily-usd"\nscope = "key"\nusd = 0.002\nwindow = "day"\nmodels = ["gpt"]\n',
    }[limit]
    rules += '\n[[rate_limits]]\nid = "per-key"\nscope = "key"\nrpm = 100\n'
    pricing = '\n[pricing."gpt-4o-mini"]\ninput = 1.0\noutput = 2.0\n'
    gw = start(make_gateway, upstream, policies={"limits.toml": rules}, extra=pricing)
    # The miss spends 1840 tokens ($0.00185): what is left is less than the estimate of a request asking
    # for 500 tokens (a hit's too, which admission reserved before the lookup until #18's follow-up).
    assert ask_chat(gw, stream=False, max_tokens=500)[1] == "miss"
    for stream in (False, True, False):
        assert ask_chat(gw, stream=stream, max_tokens=500) == (HELLO, "hit")
    with pytest.raises(openai.RateLimitError) as err:
        ask_chat(gw, stream=False, max_tokens=5000, content="Something not asked before.")
    assert err.value.body["code"] == ("rate_limit_exceeded" if limit == "tpm" else "budget_exceeded")
    assert err.value.response.headers["x-gateway-cache"] == "miss"
    assert len(upstream.requests) == 1
    # Another key with its own budget is untouched by the first key's hits and refusal.
    assert ask_chat(gw, stream=False, max_tokens=500, key=OTHER_KEY)[1] == "miss"


def test_a_hit_still_counts_against_rpm_before_the_lookup(make_gateway, upstream):
    rules = '[[rate_limits]]\nid = "per-key"\nscope = "key"\nrpm = 2\n\n[[budgets]]\nid = "t"\nscope = "key"\ntokens = 100000\nwindow = "day"\n'
    gw = start(make_gateway, upstream, policies={"limits.toml": rules})
    assert ask_chat(gw, stream=False)[1] == "miss"
    assert ask_chat(gw, stream=False)[1] == "hit"
    with pytest.raises(openai.RateLimitError) as err:
        ask_chat(gw, stream=False)
    assert err.value.body["code"] == "rate_limit_exceeded" and "rpm" in err.value.body["message"]
    assert len(upstream.requests) == 1


def test_hundred_identical_concurrent_misses_make_one_upstream_call(make_gateway, upstream):
    gw = start(make_gateway, upstream)
    upstream.push(Reply(body=_json_answer("only once"), header_delay=0.5))

    async def burst() -> list[tuple[str, str]]:
        client = openai.AsyncOpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0,
                                    http_client=openai.DefaultAsyncHttpxClient(limits=httpx.Limits(max_connections=200)))

        async def one(i: int) -> tuple[str, str]:
            raw = await client.chat.completions.with_raw_response.create(model="gpt", messages=MSGS, temperature=0,
                                                                         stream=bool(i % 2))
            if i % 2:
                text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
            else:
                text = raw.parse().choices[0].message.content or ""
            return text, raw.headers["x-gateway-cache"]

        try:
            # The upstream's one answer is a whole body, so the request that reaches it (the leader) is a
            # whole one: it goes first; the other 99, half of them streamed, arrive while it waits.
            first = asyncio.ensure_future(one(0))
            while not upstream.requests:  # it is the leader once the upstream holds its request
                await asyncio.sleep(0.005)
            return [await first, *await asyncio.gather(*(one(i) for i in range(1, 100)))]
        finally:
            await client.close()

    results = asyncio.run(burst())
    assert len(upstream.requests) == 1
    assert {text for text, _ in results} == {"only once"}
    outcomes = [o for _, o in results]
    assert outcomes.count("miss") == 1 and outcomes.count("hit") == 99


def test_bad_cache_config_is_refused_with_file_and_key(tmp_path):
    def compile_with(cache: str, main_extra: str = "") -> None:
        (tmp_path / "policies").mkdir(exist_ok=True)
        (tmp_path / "policies" / "cache.toml").write_text(textwrap.dedent(cache))
        (tmp_path / "gateway.toml").write_text(base_config("http://127.0.0.1:9", main_extra))
        compile_runtime(load_config(str(tmp_path / "gateway.toml")), Services())

    cases = [
        ('[[cache]]\nid = "c"\nttl = 60\n', "cache[0].ttl", "unknown key"),
        ('[[cache]]\nid = "c"\nttl_s = -1\n', "cache[0].ttl_s", "greater than 0"),
        ('[[cache]]\nid = "c"\nstore = "shared"\n', "cache[0].store", "Redis"),
        ('[[cache]]\nid = "c"\nstore = "disk"\n', "cache[0].store", "'memory' or 'shared'"),
        ('[[cache]]\nid = "c"\n[[cache]]\nid = "c"\n', "cache[1].id", "unique"),
        ('[[cache]]\nid = "c"\nmax_temperature = 3\n', "cache[0].max_temperature", "less than or equal to 2"),
    ]
    for text, key, expected in cases:
        with pytest.raises(ConfigError) as err:
            compile_with(text)
        assert err.value.key == key and expected in str(err.value), (text, str(err.value))
        assert str(tmp_path / "policies" / "cache.toml") in str(err.value)
    with pytest.raises(ConfigError) as err:
        compile_with('[[cache]]\nid = "c"\n', '\n[response_cache]\nsecret_env = "GW_TEST_UNSET_SECRET"\n')
    assert err.value.key == "response_cache.secret_env"


def test_two_gateways_sharing_redis_make_one_upstream_call(make_gateway, upstream, redis_url, monkeypatch):
    """Across instances: the short lock in the shared store makes the second gateway wait for the first's entry."""
    monkeypatch.setenv("GW_CACHE_SECRET", "a-deployment-secret-of-some-length")
    cache = CACHE.replace('ttl_s = 60', 'ttl_s = 60\nstore = "shared"\nnamespace = "all"')
    extra = '\n[response_cache]\nsecret_env = "GW_CACHE_SECRET"\n'
    gws = [start(make_gateway, upstream, cache=cache, extra=extra, store=redis_url) for _ in range(2)]
    upstream.push(Reply(body=_json_answer("fetched once"), header_delay=0.5))

    async def burst() -> list[str]:
        clients = [openai.AsyncOpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0) for gw in gws]

        async def one(i: int) -> str:
            raw = await clients[i % 2].chat.completions.with_raw_response.create(model="gpt", messages=MSGS,
                                                                                temperature=0)
            assert raw.parse().choices[0].message.content == "fetched once"
            return raw.headers["x-gateway-cache"]

        try:
            return await asyncio.gather(*(one(i) for i in range(20)))
        finally:
            for c in clients:
                await c.close()

    outcomes = asyncio.run(burst())
    assert len(upstream.requests) == 1
    assert outcomes.count("miss") == 1 and outcomes.count("hit") == 19


def test_an_answer_over_max_entry_bytes_is_not_kept(make_gateway, upstream):
    gw = start(make_gateway, upstream, cache=CACHE.replace('ttl_s = 60', 'ttl_s = 60\nmax_entry_bytes = 256'))
    upstream.push(Reply(body=_json_answer("x" * 300)), Reply(body=_json_answer("x" * 300)))
    assert ask_chat(gw, stream=False)[1] == "miss"
    assert ask_chat(gw, stream=False)[1] == "miss"
    assert len(upstream.requests) == 2


def test_an_upstream_error_is_not_cached(make_gateway, upstream):
    gw = start(make_gateway, upstream)
    upstream.push(Reply(status=400, body=orjson.dumps({"error": {"message": "bad", "type": "invalid_request_error"}})))
    with pytest.raises(openai.BadRequestError):
        ask_chat(gw, stream=False)
    assert ask_chat(gw, stream=False) == (HELLO, "miss")
    assert ask_chat(gw, stream=False) == (HELLO, "hit")
    assert len(upstream.requests) == 2


def test_a_hit_is_scanned_by_the_output_guardrails_of_the_request_that_hits(make_gateway, upstream):
    """Two keys share a namespace; only the second has an output rule blocking a phrase. The first key's
    miss stores the answer; the second key's hit is refused by its own output rule, streamed or not."""
    deny = """
[[guardrails]]
id = "codename"
type = "deny_list"
keys = ["other"]
phrases = ["project falcon"]
action = "block"
direction = "output"
"""
    cache = CACHE.replace('ttl_s = 60', 'ttl_s = 60\nnamespace = "shared"')
    gw = start(make_gateway, upstream, cache=cache, policies={"guardrails.toml": deny})
    upstream.push(Reply(body=_json_answer("The codename is project falcon.")))
    assert ask_chat(gw, stream=False, key=TEST_KEY) == ("The codename is project falcon.", "miss")
    with pytest.raises(openai.APIStatusError) as err:
        ask_chat(gw, stream=False, key=OTHER_KEY)
    assert err.value.status_code == 400 and "content policy" in str(err.value)
    assert err.value.response.headers["x-gateway-cache"] == "hit"
    # Streamed, the hit is a stream like a miss's: the block ends it with an in-band error event, and the
    # phrase never reaches the caller.
    raw = chat(gw, OTHER_KEY).chat.completions.with_raw_response.create(model="gpt", messages=MSGS, temperature=0,
                                                                        stream=True)
    assert raw.headers["x-gateway-cache"] == "hit"
    got = []
    with pytest.raises(openai.APIError) as err:
        for c in raw.parse():
            got.append(c.choices[0].delta.content or "" if c.choices else "")
    assert "content policy" in str(err.value) and "falcon" not in "".join(got)
    assert ask_chat(gw, stream=True, key=TEST_KEY) == ("The codename is project falcon.", "hit")
    assert len(upstream.requests) == 1


def test_embeddings_are_cached_as_the_upstream_body_and_responses_bypass(make_gateway, upstream):
    gw = start(make_gateway, upstream)
    first = chat(gw).embeddings.with_raw_response.create(model="gpt", input=["a", "b"])
    second = chat(gw).embeddings.with_raw_response.create(model="gpt", input=["a", "b"])
    assert (first.headers["x-gateway-cache"], second.headers["x-gateway-cache"]) == ("miss", "hit")
    assert [d.embedding for d in second.parse().data] == [d.embedding for d in first.parse().data] == [[0.1, 0.2, 0.3]] * 2
    assert second.parse().usage.prompt_tokens == 5
    assert chat(gw).embeddings.with_raw_response.create(model="gpt", input=["c"]).headers["x-gateway-cache"] == "miss"
    assert len(upstream.requests) == 2
    for _ in range(2):
        raw = chat(gw).responses.with_raw_response.create(model="gpt", input="Say hello.", temperature=0)
        assert raw.headers["x-gateway-cache"] == "bypass"
    assert len(upstream.requests) == 4


def test_concurrency_counts_a_hit(make_gateway, upstream, servers):
    """A hit takes a concurrency slot like any request: with one slot held by a slow miss, a would-be hit is refused."""
    import threading

    limits = '[[rate_limits]]\nid = "one-at-a-time"\nscope = "key"\nconcurrency = 1\n'
    gw = start(make_gateway, upstream, policies={"limits.toml": limits})
    assert ask_chat(gw, stream=False)[1] == "miss"
    held = asyncio.Event()
    upstream.push(Reply(body=_json_answer("slow"), hold=held))
    slow = threading.Thread(target=ask_chat, args=(gw,), kwargs={"stream": False, "content": "something else"})
    slow.start()
    try:
        for _ in range(200):
            if len(upstream.requests) == 2:
                break
            threading.Event().wait(0.01)
        with pytest.raises(openai.RateLimitError) as err:
            ask_chat(gw, stream=False)
        assert "concurrency" in str(err.value)
    finally:
        servers.loop.call_soon_threadsafe(held.set)
        slow.join(10)
    assert ask_chat(gw, stream=False)[1] == "hit"
    assert len(upstream.requests) == 2


TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
    "location": {"type": "string"}, "unit": {"type": "string"}}}}}]


@pytest.mark.parametrize("first_stream", [True, False])
def test_tool_calls_are_replayed(make_gateway, upstream, first_stream):
    from tests.support.fake_upstream import transcript

    gw = start(make_gateway, upstream)
    upstream.push(Reply(sse=transcript("openai_stream_tool_calls.sse")) if first_stream
                  else Reply(body=transcript("openai_chat_tool_calls.json")))

    def calls(stream: bool) -> tuple[list[tuple[str, str, dict]], str]:
        raw = chat(gw).chat.completions.with_raw_response.create(model="gpt", messages=MSGS, tools=TOOLS,
                                                                 temperature=0, stream=stream)
        if not stream:
            msg = raw.parse().choices[0]
            return ([(c.id, c.function.name, orjson.loads(c.function.arguments)) for c in msg.message.tool_calls],
                    raw.headers["x-gateway-cache"])
        parts: dict[int, list] = {}
        for chunk in raw.parse():
            for choice in chunk.choices:
                for tc in choice.delta.tool_calls or []:
                    cur = parts.setdefault(tc.index, [None, None, ""])
                    cur[0] = tc.id or cur[0]
                    cur[1] = (tc.function.name if tc.function else None) or cur[1]
                    cur[2] += (tc.function.arguments or "") if tc.function else ""
        return [(i, n, orjson.loads(a)) for i, n, a in parts.values()], raw.headers["x-gateway-cache"]

    first, outcome = calls(first_stream)
    assert outcome == "miss" and len(first) >= 1
    assert calls(not first_stream) == (first, "hit")
    assert calls(first_stream) == (first, "hit")
    assert len(upstream.requests) == 1


def test_messages_tool_use_is_replayed_streamed(make_gateway, upstream):
    from tests.support.fake_upstream import transcript

    gw = start(make_gateway, upstream)
    upstream.push(Reply(body=transcript("anthropic_message_tool_use.json")))
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    client = messages(gw)
    first = client.messages.create(model="claude", max_tokens=100, messages=MSGS, tools=tools,
                                   extra_body={"temperature": 0})
    with client.messages.stream(model="claude", max_tokens=100, messages=MSGS, tools=tools,
                                extra_body={"temperature": 0}) as s:
        replayed = s.get_final_message()
        assert s.response.headers["x-gateway-cache"] == "hit"

    def uses(m):
        return [(b.id, b.name, b.input) for b in m.content if b.type == "tool_use"]
    assert uses(replayed) == uses(first) and len(uses(first)) == 2
    assert replayed.stop_reason == first.stop_reason == "tool_use"
    assert len(upstream.requests) == 1


def test_a_shared_store_that_is_down_is_a_miss_never_a_failed_request(make_gateway, upstream):
    from tests.conftest_redis import RedisServer

    server = RedisServer().start()
    try:
        cache = CACHE.replace('ttl_s = 60', 'ttl_s = 60\nstore = "shared"')
        main = base_config(upstream.url, ANTHROPIC.format(url=upstream.url))
        main += f'\n[store]\nurl = "{server.url}"\non_store_error = "open"\n'
        gw = make_gateway(main=main, policies={"keys.toml": KEYS, "cache.toml": cache})
        assert ask_chat(gw, stream=False) == (HELLO, "miss")
        assert ask_chat(gw, stream=False) == (HELLO, "hit")
        server.stop()
        assert ask_chat(gw, stream=False) == (HELLO, "miss"), "the lookup failed: answered from the upstream"
        assert ask_chat(gw, stream=True) == (HELLO, "miss")
        assert len(upstream.requests) == 3
    finally:
        server.close()


def test_stats_and_metrics_show_the_cache_per_alias(make_gateway, upstream):
    """/stats `cache_1h` and /metrics from real traffic: per alias, hits, misses, bypasses, the hit ratio
    (hits among hits and misses) and the USD the hits saved (what the answer cost when it was fetched)."""
    pricing = '\n[pricing."gpt-4o-mini"]\ninput = 1.0\noutput = 2.0\n'
    gw = start(make_gateway, upstream, extra=pricing)
    assert ask_chat(gw, stream=False)[1] == "miss"
    assert ask_chat(gw, stream=True)[1] == "hit"
    assert ask_chat(gw, stream=False)[1] == "hit"
    assert ask_chat(gw, stream=False, content="Another question.")[1] == "miss"
    assert ask_chat(gw, stream=False, temperature=0.9)[1] == "bypass"
    assert ask_messages(gw, stream=False)[1] == "miss"
    cost = 1830 * 1.0 / 1e6 + 10 * 2.0 / 1e6
    row = httpx.get(gw.url + "/stats").json()["cache_1h"]["by_alias"]
    assert row["gpt"] == {"hit": 2, "miss": 2, "bypass": 1, "hit_ratio": 0.5, "saved_usd": pytest.approx(2 * cost)}
    assert row["claude"]["miss"] == 1 and row["claude"]["hit_ratio"] == 0.0
    metrics = httpx.get(gw.url + "/metrics").text
    for outcome, n in (("hit", 2), ("miss", 2), ("bypass", 1)):
        assert f'gateway_cache_requests_total{{alias="gpt",outcome="{outcome}"}} {n}.0' in metrics
    saved = next(line for line in metrics.splitlines() if line.startswith('gateway_cache_saved_usd_total{alias="gpt"}'))
    assert float(saved.split()[-1]) == pytest.approx(2 * cost)


def test_a_managed_keys_own_tpm_never_refuses_its_hits(make_gateway, upstream, store_url, monkeypatch):
    """A key's own limits set over the admin API join the same two phases as the policy's rules: with its own
    tpm used up by a miss, the key still gets its hits, and a new miss is refused."""
    monkeypatch.setenv("TEST_ADMIN_KEY", "admin-secret-0123456789")
    extra = '\n[admin]\nkey_env = "TEST_ADMIN_KEY"\n'
    gw = start(make_gateway, upstream, extra=extra, store=store_url)
    r = httpx.post(gw.url + "/admin/keys", json={"id": "svc-cache", "limits": {"tpm": 2000, "rpm": 100}},
                   headers={"Authorization": "Bearer admin-secret-0123456789"}, timeout=10)
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    assert ask_chat(gw, stream=False, key=secret, max_tokens=500)[1] == "miss"  # 1840 tokens spent
    for stream in (True, False):
        assert ask_chat(gw, stream=stream, key=secret, max_tokens=500) == (HELLO, "hit")
    with pytest.raises(openai.RateLimitError) as err:
        ask_chat(gw, stream=False, key=secret, max_tokens=500, content="Something new.")
    assert err.value.body["code"] == "rate_limit_exceeded" and "tpm" in err.value.body["message"]
    assert len(upstream.requests) == 1

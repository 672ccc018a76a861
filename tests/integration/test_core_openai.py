"""The core, driven by the official openai SDK (sync and async) through the gateway to a fake
upstream that replays recorded OpenAI wire transcripts over a real socket."""

from __future__ import annotations

import asyncio

import openai
import pytest

from tests.support.fake_upstream import Reply, transcript
from tests.support.gateway import OTHER_KEY, TEST_KEY, UPSTREAM_SECRET

MSGS = [{"role": "user", "content": "Say hello"}]


def client(gw, key=TEST_KEY, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0, **kw)


def test_non_stream_reaches_upstream_with_its_model_and_key(gateway, upstream):
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="gpt", messages=MSGS, extra_headers={"x-request-id": "my-req-1"})
    resp = raw.parse()
    assert resp.choices[0].message.content == "Hello! How can I help you today?"
    assert resp.usage.prompt_tokens == 1830 and resp.usage.completion_tokens == 10
    assert raw.headers["x-request-id"] == "my-req-1"
    assert raw.headers["x-gateway-provider"] == "up" and raw.headers["x-gateway-model"] == "gpt-4o-mini"
    seen = upstream.requests[-1]
    assert seen.path == "/v1/chat/completions"
    assert seen.body["model"] == "gpt-4o-mini" and seen.body["messages"] == MSGS
    assert seen.headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"
    assert seen.headers["x-request-id"] == "my-req-1"


def test_stream_relays_text_and_hides_usage_chunk_unless_asked(gateway, upstream):
    chunks = list(client(gateway).chat.completions.create(model="gpt", messages=MSGS, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! How can I help you today?"
    assert all(c.choices for c in chunks), "the usage-only chunk must not reach a client that did not ask"
    assert upstream.requests[-1].body["stream_options"] == {"include_usage": True}
    assert gateway.state.in_flight == 0


def test_stream_passes_usage_chunk_when_asked(gateway, upstream):
    chunks = list(client(gateway).chat.completions.create(
        model="gpt", messages=MSGS, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 1830
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 1792


def test_async_sdk_stream_and_non_stream(gateway, upstream):
    async def go():
        c = openai.AsyncOpenAI(base_url=gateway.v1, api_key=TEST_KEY, max_retries=0)
        r = await c.chat.completions.create(model="gpt", messages=MSGS)
        s = await c.chat.completions.create(model="gpt", messages=MSGS, stream=True)
        parts = [ch.choices[0].delta.content or "" async for ch in s if ch.choices]
        await c.close()
        return r.choices[0].message.content, "".join(parts)

    whole, streamed = asyncio.run(go())
    assert whole == streamed == "Hello! How can I help you today?"


def test_tool_calls_non_stream_and_stream(gateway, upstream):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]
    upstream.push(Reply(body=transcript("openai_chat_tool_calls.json")))
    r = client(gateway).chat.completions.create(model="gpt", messages=MSGS, tools=tools)
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name
    upstream.push(Reply(sse=transcript("openai_stream_tool_calls.sse")))
    chunks = list(client(gateway).chat.completions.create(model="gpt", messages=MSGS, tools=tools, stream=True))
    args: dict[int, str] = {}
    names = {}
    for c in chunks:
        for ch in c.choices:
            for tc in ch.delta.tool_calls or ():
                args[tc.index] = args.get(tc.index, "") + (tc.function.arguments or "")
                if tc.function.name:
                    names[tc.index] = tc.function.name
    assert names and all(a.startswith("{") and a.endswith("}") for a in args.values())
    assert upstream.requests[-1].body["tools"] == tools


def test_mock_provider_n_choices_and_embeddings(gateway):
    r = client(gateway).chat.completions.create(model="demo", messages=[{"role": "user", "content": "echo me"}], n=2)
    assert [c.message.content for c in r.choices] == ["echo me", "echo me"]
    e = client(gateway).embeddings.create(model="demo", input=["a", "b"])
    assert len(e.data) == 2 and len(e.data[0].embedding) == 8


def test_embeddings_pass_through(gateway, upstream):
    e = client(gateway).embeddings.create(model="gpt", input="hello")
    assert e.data[0].embedding == [0.1, 0.2, 0.3] and e.usage.prompt_tokens == 5
    assert upstream.requests[-1].path == "/v1/embeddings"


def test_models_lists_the_aliases_a_key_may_use(gateway):
    assert sorted(m.id for m in client(gateway).models.list()) == ["demo", "gpt"]
    assert [m.id for m in client(gateway, OTHER_KEY).models.list()] == ["demo"]


def test_key_limited_to_models_is_refused_other_models(gateway):
    with pytest.raises(openai.PermissionDeniedError) as exc:
        client(gateway, OTHER_KEY).chat.completions.create(model="gpt", messages=MSGS)
    assert exc.value.body["code"] == "model_not_allowed"


def test_traceparent_is_propagated_with_the_callers_trace_id(gateway, upstream):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    client(gateway).chat.completions.create(model="gpt", messages=MSGS,
                                            extra_headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    sent = upstream.requests[-1].headers["traceparent"]
    assert sent.startswith(f"00-{trace}-") and "00f067aa0ba902b7" not in sent


def test_client_disconnect_mid_stream_closes_the_upstream_request(gateway, upstream, servers):
    upstream.push(Reply(sse=transcript("openai_stream_text.sse"), stall_after=2))
    stream = client(gateway).chat.completions.create(model="gpt", messages=MSGS, stream=True)
    next(iter(stream))
    stream.close()
    servers.run(asyncio.wait_for(upstream.abandoned_event.wait(), 5))
    assert upstream.abandoned == 1
    for _ in range(50):
        if gateway.state.in_flight == 0:
            break
        servers.run(asyncio.sleep(0.05))
    assert gateway.state.in_flight == 0


def test_upstream_stalling_mid_stream_ends_with_an_error_event(make_gateway, upstream):
    gw = make_gateway(server="idle_timeout_s = 0.5")
    upstream.push(Reply(sse=transcript("openai_stream_text.sse"), stall_after=3))
    got = []
    with pytest.raises(openai.APIError) as exc:
        for c in client(gw).chat.completions.create(model="gpt", messages=MSGS, stream=True):
            got.append(c)
    assert got, "the chunks before the stall reach the client"
    assert "sent nothing" in str(exc.value)


def test_upstream_sse_error_event_is_relayed(gateway, upstream):
    upstream.push(Reply(sse=transcript("openai_stream_error.sse")))
    with pytest.raises(openai.APIError):
        list(client(gateway).chat.completions.create(model="gpt", messages=MSGS, stream=True))


def test_upstream_cookies_never_reach_another_callers_request(make_gateway, upstream):
    # One client session serves every caller: a cookie an upstream sets for one request must not be
    # sent back on the next (another tenant's), so the gateway keeps no cookie jar. The upstream is
    # named "localhost" because aiohttp's default jar ignores cookies from bare IP addresses.
    from tests.support.gateway import base_config

    gw = make_gateway(main=base_config(upstream.url.replace("127.0.0.1", "localhost")))
    upstream.push(Reply(body=transcript("openai_chat_text.json"), headers={"Set-Cookie": "session=tenant-a; Path=/"}))
    client(gw).chat.completions.create(model="gpt", messages=MSGS)
    client(gw).chat.completions.create(model="gpt", messages=MSGS)
    assert len(upstream.requests) == 2
    assert "Cookie" not in upstream.requests[-1].headers

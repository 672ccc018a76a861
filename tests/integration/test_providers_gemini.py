"""Gemini-backed aliases (Google AI `generateContent` / `streamGenerateContent?alt=sse`), driven by the
official openai and anthropic SDKs through the gateway to a fake Gemini upstream on a real socket
(tests/support/fake_gemini.py: requests validated, answers built, with the google-genai SDK's types)."""

from __future__ import annotations

import base64

import anthropic
import openai
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from gateway.config.validate import ConfigError
from gateway.records.recorder import Recorder
from tests.support.fake_gemini import FakeGemini, GReply, google_error, part, response, usage
from tests.support.gateway import TEST_KEY, UPSTREAM_SECRET

MSGS = [{"role": "user", "content": "Say hello"}]
SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
CHAT_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                                "parameters": SCHEMA}}]
TOOLS = [{"name": "get_weather", "description": "Weather in a city", "input_schema": SCHEMA}]
SIGNATURE = b"\x12\x9f signed-thought \xfe\xff" * 4  # bytes with + and / in their base64

# Published list prices, USD per million tokens (ai.google.dev/gemini-api/docs/pricing, standard tier,
# prompts up to 200k): gemini-2.5-flash input 0.30, output (thinking included) 2.50, context-cache read 0.03.
FLASH_IN, FLASH_OUT, FLASH_CACHED = 0.30, 2.50, 0.03


def gemini_config(url: str, key_env: str = "TEST_UPSTREAM_KEY") -> str:
    return f"""
[providers.google]
type = "gemini"
base_url = "{url}/v1beta"
api_key_env = "{key_env}"

[models.flash]
targets = [{{ provider = "google", model = "gemini-2.5-flash" }}]
retry_budget_s = 1

[models.flash-fb]
targets = [{{ provider = "google", model = "gemini-2.5-flash" }}]
fallbacks = ["gpt"]
retry_budget_s = 1
"""


@pytest.fixture
def gem(servers):
    fake = FakeGemini(api_key=UPSTREAM_SECRET)
    fake.url = servers.serve(fake.app())
    yield fake
    assert fake.invalid == [], "every request the gateway sent must validate with google-genai's types"
    servers.stop_app(fake.url)


@pytest.fixture
def gw(make_gateway, gem):
    return make_gateway(extra=gemini_config(gem.url))


@pytest.fixture
def finished(monkeypatch):
    """(context, recorded cost) of each request, as the recorder gets them."""
    seen = []
    original = Recorder.submit

    def capture(self, ctx, cost_usd):
        seen.append((ctx, cost_usd))
        original(self, ctx, cost_usd)

    monkeypatch.setattr(Recorder, "submit", capture)
    return seen


def chat_client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


def messages_client(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)


def cost(prompt: int, cached: int, out: int) -> float:
    return ((prompt - cached) * FLASH_IN + cached * FLASH_CACHED + out * FLASH_OUT) / 1e6


# -- the fake speaks Gemini: Google's own client reads it ----------------------------------------------
def test_the_fake_upstream_is_read_by_the_google_genai_client(gem):
    client = genai.Client(api_key=UPSTREAM_SECRET, http_options=types.HttpOptions(base_url=gem.url))
    gem.push(GReply(body=response([part("Hi"), part(call=("get_weather", {"location": "Paris"}), signature=SIGNATURE)],
                                  meta=usage(10, 4, cached=6, thoughts=3))))
    r = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert r.text == "Hi" and r.function_calls[0].args == {"location": "Paris"}
    assert r.candidates[0].content.parts[1].thought_signature == SIGNATURE
    assert (r.usage_metadata.cached_content_token_count, r.usage_metadata.thoughts_token_count) == (6, 3)
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert "".join(c.text for c in chunks) == "Hello from Gemini!"
    gem.push(GReply(status=429, body=google_error(429, "RESOURCE_EXHAUSTED", "quota")))
    with pytest.raises(genai_errors.ClientError) as exc:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert exc.value.code == 429 and exc.value.status == "RESOURCE_EXHAUSTED"
    wrong = genai.Client(api_key="AIza-wrong-key-0000000000", http_options=types.HttpOptions(base_url=gem.url))
    with pytest.raises(genai_errors.ClientError) as exc:  # the fake checks the key
        wrong.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert exc.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_the_gateway_sends_what_googles_client_sends(gw, gem):
    """The same conversation (system instruction, a tool, a call and its result, sampling settings)
    through the gateway from an OpenAI caller and through google-genai's own client: the same body."""
    client = genai.Client(api_key=UPSTREAM_SECRET, http_options=types.HttpOptions(base_url=gem.url))
    client.models.generate_content(
        model="gemini-2.5-flash",
        contents=[types.Content(role="user", parts=[types.Part(text="Weather in Paris?")]),
                  types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(
                      name="get_weather", args={"location": "Paris"}), thought_signature=SIGNATURE)]),
                  types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
                      name="get_weather", response={"output": "18C and sunny"}))])],
        config=types.GenerateContentConfig(
            system_instruction="Be brief", temperature=0.2, top_p=0.9, max_output_tokens=50, stop_sequences=["END"],
            tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
                name="get_weather", description="Weather in a city", parameters_json_schema=SCHEMA)])],
            tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
                mode="ANY", allowed_function_names=["get_weather"])),
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)))
    by_sdk = gem.requests[-1].body
    call_id = "call_x_ts_" + base64.urlsafe_b64encode(SIGNATURE).rstrip(b"=").decode()
    chat_client(gw).chat.completions.create(model="flash", temperature=0.2, top_p=0.9, max_tokens=50, stop="END",
                                            tools=CHAT_TOOLS,
                                            tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                            messages=[{"role": "system", "content": "Be brief"},
                                                      {"role": "user", "content": "Weather in Paris?"},
                                                      {"role": "assistant", "content": None, "tool_calls": [
                                                          {"id": call_id, "type": "function", "function": {
                                                              "name": "get_weather",
                                                              "arguments": '{"location": "Paris"}'}}]},
                                                      {"role": "tool", "tool_call_id": call_id,
                                                       "content": "18C and sunny"}])
    by_gateway = gem.requests[-1].body
    system = by_sdk["systemInstruction"]
    assert by_gateway["systemInstruction"]["parts"] == system["parts"]  # the SDK adds role "user"; the API ignores it
    for key in ("contents", "toolConfig", "generationConfig"):
        assert by_gateway[key] == by_sdk[key], key
    # google-genai writes `parameters_json_schema` in snake case (protobuf JSON accepts both spellings);
    # the gateway writes the REST reference's `parametersJsonSchema`: equal as the SDK reads them.
    assert [types.Tool.model_validate(t) for t in by_gateway["tools"]] == [
        types.Tool.model_validate(t) for t in by_sdk["tools"]]
    assert "parametersJsonSchema" in by_gateway["tools"][0]["functionDeclarations"][0]


# -- /v1/chat/completions ------------------------------------------------------------------------------
def test_chat_non_stream_with_system_instruction_usage_and_cost(gw, gem, finished):
    gem.push(GReply(body=response([part("Hello! How can I help?")], meta=usage(1200, 40, cached=1000, thoughts=25))))
    raw = chat_client(gw).chat.completions.with_raw_response.create(
        model="flash", messages=[{"role": "system", "content": "Be brief"}, *MSGS])
    r = raw.parse()
    assert r.choices[0].message.content == "Hello! How can I help?" and r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.prompt_tokens_details.cached_tokens) == (1200, 65, 1000)
    assert raw.headers["x-gateway-provider"] == "google"
    seen = gem.requests[-1]
    assert seen.path == "/v1beta/models/gemini-2.5-flash:generateContent" and seen.query == ""
    assert seen.headers["x-goog-api-key"] == UPSTREAM_SECRET
    assert "authorization" not in seen.headers, "the caller's key must never reach the upstream"
    assert seen.body["systemInstruction"] == {"parts": [{"text": "Be brief"}]}
    assert seen.body["contents"] == [{"role": "user", "parts": [{"text": "Say hello"}]}]
    ctx, usd = finished[-1]
    assert (ctx.usage.input_tokens, ctx.usage.output_tokens, ctx.usage.cached_tokens) == (1200, 65, 1000)
    # by hand: 200 fresh input x 0.30 + 1000 cached x 0.03 + (40 + 25 thinking) output x 2.50, per million
    assert usd == pytest.approx((200 * 0.30 + 1000 * 0.03 + 65 * 2.50) / 1e6) == pytest.approx(cost(1200, 1000, 65))


def test_chat_stream_translated_chunk_by_chunk(gw, gem, finished):
    gem.push(GReply(stream=[
        response([part("thinking...", thought=True)], finish=None, meta=usage(30, None, thoughts=12)),
        response([part("Hello")], finish=None, meta=usage(30, 1, thoughts=12)),
        response([part(" there,")], finish=None, meta=usage(30, 3, thoughts=12)),
        response([part(" friend.")], meta=usage(30, 5, thoughts=12))]))
    chunks = list(chat_client(gw).chat.completions.create(model="flash", messages=MSGS, stream=True,
                                                          stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, friend.", "thought summaries are not shown"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (30, 17)
    assert all(c.id == chunks[0].id for c in chunks)
    seen = gem.requests[-1]
    assert seen.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent" and seen.query == "alt=sse"
    ctx, usd = finished[-1]
    assert (ctx.usage.output_tokens, ctx.usage.estimated) == (17, False) and ctx.timings.first_token > 0
    assert usd == pytest.approx((30 * 0.30 + 17 * 2.50) / 1e6)


def test_chat_tools_round_trip_keeps_the_thought_signature(gw, gem):
    gem.push(GReply(body=response([part("Checking."), part(call=("get_weather", {"location": "Paris"}), signature=SIGNATURE),
                                   part(call=("get_weather", {"location": "Rome"}))], meta=usage(20, 10))))
    r = chat_client(gw).chat.completions.create(model="flash", messages=MSGS, tools=CHAT_TOOLS, tool_choice="required")
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Checking."
    calls = choice.message.tool_calls
    assert [(c.function.name, orjson.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"location": "Paris"}), ("get_weather", {"location": "Rome"})]
    assert len({c.id for c in calls}) == 2
    sent = gem.requests[-1].body
    assert sent["tools"] == [{"functionDeclarations": [{"name": "get_weather", "description": "Weather in a city",
                                                         "parametersJsonSchema": SCHEMA}]}]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    history = [*MSGS, choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": calls[0].id, "content": '{"temp_c": 18}'},
               {"role": "tool", "tool_call_id": calls[1].id, "content": "21C"}]
    gem.push(GReply(stream=[response([part("Paris 18C, Rome 21C.")], meta=usage(40, 8))]))
    chunks = list(chat_client(gw).chat.completions.create(model="flash", messages=history, tools=CHAT_TOOLS, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Paris 18C, Rome 21C."
    contents = gem.requests[-1].body["contents"]
    assert contents[1] == {"role": "model", "parts": [
        {"text": "Checking."},
        {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
         "thoughtSignature": base64.urlsafe_b64encode(SIGNATURE).decode()},
        {"functionCall": {"name": "get_weather", "args": {"location": "Rome"}}}]}
    assert contents[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}},
        {"functionResponse": {"name": "get_weather", "response": {"output": "21C"}}}]}


def test_chat_stream_tool_call_and_image_part(gw, gem):
    gem.push(GReply(stream=[response([part("Let me look.")], finish=None, meta=usage(300, 3)),
                            response([part(call=("get_weather", {"location": "Oslo"}))], meta=usage(300, 9))]))
    chunks = list(chat_client(gw).chat.completions.create(model="flash", tools=CHAT_TOOLS, stream=True, messages=[
        {"role": "user", "content": [{"type": "text", "text": "Where is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]))
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert [(tc.index, tc.function.name, tc.function.arguments) for tc in calls] == [
        (0, "get_weather", '{"location":"Oslo"}')]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert gem.requests[-1].body["contents"][0]["parts"] == [
        {"text": "Where is this?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]
    with pytest.raises(openai.BadRequestError) as exc:  # a URL cannot be sent inline: refused, not dropped
        chat_client(gw).chat.completions.create(model="flash", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert exc.value.body["param"] == "messages[0].content[0]" and "data URL" in exc.value.body["message"]


def test_chat_finish_reasons_and_a_blocked_prompt(gw, gem):
    gem.push(GReply(body=response([part("Once upon a")], finish="MAX_TOKENS", meta=usage(5, 3))))
    assert chat_client(gw).chat.completions.create(model="flash", messages=MSGS).choices[0].finish_reason == "length"
    gem.push(GReply(body=response(None, finish=None, blocked="SAFETY", meta=usage(5, None))))
    r = chat_client(gw).chat.completions.create(model="flash", messages=MSGS)
    assert r.choices[0].finish_reason == "content_filter" and not r.choices[0].message.content
    gem.push(GReply(stream=[response([part("I can")], finish=None), response([], finish="SAFETY", meta=usage(5, 2))]))
    chunks = list(chat_client(gw).chat.completions.create(model="flash", messages=MSGS, stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"


# -- /v1/messages ----------------------------------------------------------------------------------------
def test_messages_non_stream_and_stream_with_system_and_cost(gw, gem, finished):
    gem.push(GReply(body=response([part("Hello from Gemini!")], meta=usage(2000, 10, cached=1500))))
    msg = messages_client(gw).messages.create(model="flash", max_tokens=100, messages=MSGS, system="Be brief")
    assert msg.content[0].text == "Hello from Gemini!" and msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (500, 1500, 10)
    sent = gem.requests[-1].body
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief"}]}
    assert sent["generationConfig"] == {"maxOutputTokens": 100}
    assert finished[-1][1] == pytest.approx(cost(2000, 1500, 10))
    with messages_client(gw).messages.stream(model="flash", max_tokens=100, messages=MSGS) as s:
        names = [e.type for e in s if e.type != "text"]
        final = s.get_final_message()
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert final.content[0].text == "Hello from Gemini!" and final.usage.output_tokens == 5
    assert gem.requests[-1].query == "alt=sse"


def test_messages_tools_round_trip(gw, gem):
    gem.push(GReply(stream=[response([part("On it.")], finish=None),
                            response([part(call=("get_weather", {"location": "Lima"}), signature=SIGNATURE)],
                                     meta=usage(50, 12))]))
    with messages_client(gw).messages.stream(model="flash", max_tokens=100, messages=MSGS, tools=TOOLS,
                                             tool_choice={"type": "tool", "name": "get_weather"}) as s:
        final = s.get_final_message()
    use = [b for b in final.content if b.type == "tool_use"]
    assert final.stop_reason == "tool_use" and use[0].input == {"location": "Lima"} and use[0].name == "get_weather"
    assert gem.requests[-1].body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    history = [*MSGS, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use[0].id, "content": "12C"}]}]
    gem.push(GReply(body=response([part("It is 12C in Lima.")], meta=usage(60, 7))))
    msg = messages_client(gw).messages.create(model="flash", max_tokens=100, messages=history, tools=TOOLS)
    assert msg.content[0].text == "It is 12C in Lima."
    contents = gem.requests[-1].body["contents"]
    assert contents[1]["parts"][1] == {"functionCall": {"name": "get_weather", "args": {"location": "Lima"}},
                                       "thoughtSignature": base64.urlsafe_b64encode(SIGNATURE).decode()}
    assert contents[2] == {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                                           "response": {"output": "12C"}}}]}


# -- errors in the caller's shape ---------------------------------------------------------------------
def test_400_comes_back_in_each_callers_shape(gw, gem):
    body = google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
    gem.push(GReply(status=400, body=body))
    with pytest.raises(openai.BadRequestError) as exc:
        chat_client(gw).chat.completions.create(model="flash", messages=MSGS)
    assert exc.value.body["message"] == "Request contains an invalid argument." and exc.value.body["upstream_status"] == 400
    gem.push(GReply(status=400, body=body))
    with pytest.raises(anthropic.BadRequestError) as aexc:
        messages_client(gw).messages.create(model="flash", max_tokens=10, messages=MSGS)
    assert aexc.value.body["type"] == "error" and aexc.value.body["error"]["type"] == "invalid_request_error"
    assert len(gem.requests) == 2, "a 400 is the request's fault: not retried"


def test_429_is_retried_on_the_fallback_or_passed_on_with_retry_after(gw, gem, upstream, finished):
    quota = google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "23.5s"}])
    gem.push(GReply(status=429, body=quota))
    r = chat_client(gw).chat.completions.create(model="flash-fb", messages=MSGS)
    assert r.choices[0].message.content == "Hello! How can I help you today?", "answered by the fallback alias"
    assert upstream.requests[-1].path == "/v1/chat/completions" and finished[-1][0].attempts == 2
    gem.push(GReply(status=429, body=quota))
    with pytest.raises(openai.RateLimitError) as exc:
        chat_client(gw).chat.completions.create(model="flash", messages=MSGS)
    assert exc.value.response.headers["retry-after"] == "24"
    gem.push(GReply(status=429, body=quota))
    with pytest.raises(anthropic.RateLimitError) as aexc:
        messages_client(gw).messages.create(model="flash", max_tokens=10, messages=MSGS)
    assert aexc.value.response.headers["retry-after"] == "24" and aexc.value.body["error"]["type"] == "rate_limit_error"


def test_500_is_retried_then_reported_as_a_5xx(gw, gem):
    gem.push(GReply(status=500, body=google_error(500, "INTERNAL", "An internal error has occurred.")))
    r = chat_client(gw).chat.completions.create(model="flash", messages=MSGS)  # the retry gets the default answer
    assert r.choices[0].message.content == "Hello from Gemini!" and len(gem.requests) == 2
    gem.push(*[GReply(status=500, body=google_error(500, "INTERNAL", "An internal error has occurred."))] * 3)
    with pytest.raises(openai.InternalServerError) as exc:
        chat_client(gw).chat.completions.create(model="flash", messages=MSGS)
    assert exc.value.status_code == 502 and exc.value.body["upstream_status"] == 500
    gem.push(*[GReply(status=503, body=google_error(503, "UNAVAILABLE", "The model is overloaded."))] * 3)
    with pytest.raises(anthropic.APIStatusError) as aexc:
        messages_client(gw).messages.create(model="flash", max_tokens=10, messages=MSGS)
    assert aexc.value.status_code == 503 and aexc.value.body["error"]["type"] == "overloaded_error"
    assert aexc.value.response.headers["retry-after"]


def test_stream_cut_before_the_finish_ends_with_an_error_event(gw, gem):
    gem.push(GReply(stream=[response([part("Hel")], finish=None), response([part("lo")], finish=None),
                            response([part("!")])], cut_after=2))
    with pytest.raises(openai.APIError):
        list(chat_client(gw).chat.completions.create(model="flash", messages=MSGS, stream=True))
    gem.push(GReply(stream=[response([part("Hel")], finish=None),
                            {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}]))
    with pytest.raises(anthropic.APIStatusError):
        with messages_client(gw).messages.stream(model="flash", max_tokens=10, messages=MSGS) as s:
            for _ in s:
                pass


def test_a_wrong_api_key_is_the_gateways_problem_and_is_never_shown(make_gateway, gem, monkeypatch):
    monkeypatch.setenv("WRONG_GEMINI_KEY", "AIzaSy-wrong-key-0123456789abcdef")
    gw = make_gateway(extra=gemini_config(gem.url, key_env="WRONG_GEMINI_KEY"))
    with pytest.raises(openai.APIStatusError) as exc:
        chat_client(gw).chat.completions.create(model="flash", messages=MSGS)
    assert exc.value.status_code == 502 and exc.value.body["code"] == "upstream_auth_failed"
    assert "AIzaSy-wrong" not in str(exc.value.body)
    assert gem.requests[-1].headers["x-goog-api-key"] == "AIzaSy-wrong-key-0123456789abcdef"


# -- policies: key scrubbing and guardrails ----------------------------------------------------------
def test_the_api_key_is_scrubbed_from_answers_and_errors(gw, gem):
    half = len(UPSTREAM_SECRET) // 2
    gem.push(GReply(stream=[response([part("your key is " + UPSTREAM_SECRET[:half])], finish=None),
                            response([part(UPSTREAM_SECRET[half:] + " ok")], meta=usage(5, 5))]))
    chunks = list(chat_client(gw).chat.completions.create(model="flash", messages=MSGS, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert UPSTREAM_SECRET not in text and UPSTREAM_SECRET[half:] not in text and "[redacted]" in text
    gem.push(GReply(status=400, body=google_error(400, "INVALID_ARGUMENT", f"bad request for key {UPSTREAM_SECRET}")))
    with pytest.raises(openai.BadRequestError) as exc:
        chat_client(gw).chat.completions.create(model="flash", messages=MSGS)
    assert UPSTREAM_SECRET not in str(exc.value.body) and "[redacted]" in exc.value.body["message"]


PII = {"guardrails.toml": """
[[guardrails]]
id = "contact-pii"
type = "pii"
entities = ["EMAIL_ADDRESS", "PHONE_NUMBER"]
action = "redact"
direction = "both"
"""}


def test_pii_is_redacted_both_ways_on_a_streamed_gemini_answer(make_gateway, gem):
    gw = make_gateway(extra=gemini_config(gem.url), policies=PII)
    gem.push(GReply(stream=[response([part("Write to jane.d")], finish=None),
                            response([part("oe@example.com or call")], finish=None),
                            response([part(" 212-555-0199 today.")], meta=usage(9, 12))]))
    chunks = list(chat_client(gw).chat.completions.create(model="flash", stream=True, messages=[
        {"role": "user", "content": "Contact for bob@example.org?"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "jane.doe@example.com" not in text and "212-555-0199" not in text
    assert "<EMAIL_ADDRESS>" in text and text.endswith("today.")
    sent = gem.requests[-1].body["contents"][0]["parts"][0]["text"]
    assert "bob@example.org" not in sent and "<EMAIL_ADDRESS>" in sent
    gem.push(GReply(stream=[response([part("Mail jane.d")], finish=None),
                            response([part("oe@example.com now")], meta=usage(9, 6))]))
    with messages_client(gw).messages.stream(model="flash", max_tokens=50, messages=MSGS) as s:
        final = s.get_final_message()
    assert final.content[0].text == "Mail <EMAIL_ADDRESS> now"


# -- limits and budgets ----------------------------------------------------------------------------------
def test_a_usd_budget_applies_to_a_gemini_alias_from_both_apis(make_gateway, gem):
    gw = make_gateway(extra=gemini_config(gem.url), policies={"budgets.toml": """
        [[budgets]]
        id = "gemini-usd"
        scope = "key"
        usd = 0.001
        window = "day"
        models = ["flash"]
        """})
    # reserved by Gemini's prices before the call (the worst case), charged by them after: 1000 x 0.30 +
    # 300 x 2.50 per million = $0.00105, past the $0.001 budget
    gem.push(GReply(body=response([part("long answer")], meta=usage(1000, 300))))
    chat_client(gw).chat.completions.create(model="flash", messages=MSGS, max_tokens=100)
    with pytest.raises(openai.RateLimitError) as exc:
        chat_client(gw).chat.completions.create(model="flash", messages=MSGS, max_tokens=100)
    assert "gemini-usd" in exc.value.message and len(gem.requests) == 1
    with pytest.raises(anthropic.RateLimitError):
        messages_client(gw).messages.create(model="flash", max_tokens=100, messages=MSGS)
    assert len(gem.requests) == 1


def test_a_usd_budget_over_an_unpriced_gemini_model_is_a_config_error(make_gateway, gem):
    extra = gemini_config(gem.url) + """
[models.exp]
targets = [{ provider = "google", model = "gemini-experimental-unpriced" }]
"""
    with pytest.raises(ConfigError) as exc:
        make_gateway(extra=extra, policies={"budgets.toml": """
            [[budgets]]
            id = "google-usd"
            scope = "key"
            usd = 5
            window = "day"
            models = ["flash", "exp"]
            """})
    assert "alias 'exp' can reach google/gemini-experimental-unpriced" in str(exc.value)
    make_gateway(extra=extra, policies={"budgets.toml": """
        [[budgets]]
        id = "flash-usd"
        scope = "key"
        usd = 5
        window = "day"
        models = ["flash"]
        """})  # every Gemini model the defaults price passes


"""AWS Bedrock (Converse, ConverseStream) behind the gateway, driven by the official openai and anthropic
SDKs against a fake Bedrock that checks every SigV4 signature with botocore, validates every body
against botocore's bedrock-runtime model and answers in Bedrock's JSON and binary event-stream wire
(tests/support/fake_bedrock.py). Credentials come from the environment through botocore's standard
chain, as a deployment's would."""

from __future__ import annotations

import time

import anthropic
import openai
import orjson
import pytest

from gateway.records.recorder import Recorder
from tests.support import fake_bedrock as fb
from tests.support.gateway import TEST_KEY

MSGS = [{"role": "user", "content": "Say hello"}]
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
TOOLS = [{"name": "get_weather", "description": "Weather in a city",
          "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}]
CHAT_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                                 "parameters": TOOLS[0]["input_schema"]}}]
# Published on-demand prices of Claude 3.5 Haiku on Bedrock, USD per million tokens
# (https://aws.amazon.com/bedrock/pricing/): input 0.80, output 4.00, prompt-cache read 0.08.
HAIKU_IN, HAIKU_OUT, HAIKU_CACHE_READ = 0.80, 4.00, 0.08


def bedrock_config(url: str, fallbacks: str = "", provider: str = "") -> str:
    return f"""
[providers.aws]
type = "bedrock"
region = "{fb.REGION}"
base_url = "{url}"
{provider}

[models.haiku]
targets = [{{ provider = "aws", model = "{HAIKU}" }}]
{fallbacks}
"""


@pytest.fixture
def bedrock(servers):
    fake = fb.FakeBedrock()
    fake.url = servers.serve(fake.app())
    yield fake
    servers.stop_app(fake.url)


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """The test credentials in the environment, and nothing else of the chain to find (no files, no
    instance metadata): what a container with AWS_* variables sees."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", fb.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", fb.SECRET_KEY)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture
def gw(make_gateway, bedrock, aws_env):
    return make_gateway(extra=bedrock_config(bedrock.url))


@pytest.fixture
def finished(monkeypatch):
    seen = []
    original = Recorder.submit

    def capture(self, ctx, cost_usd):
        seen.append((ctx, cost_usd))
        original(self, ctx, cost_usd)

    monkeypatch.setattr(Recorder, "submit", capture)
    return seen


def chat(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


def messages(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)


def hand_cost(inp: int, out: int, read: int, write: int = 0) -> float:
    # Claude 3.5 Haiku on Bedrock: cache writes at 1.25x input ($1.00), reads at 0.1x ($0.08).
    return (inp * HAIKU_IN + write * HAIKU_IN * 1.25 + read * HAIKU_CACHE_READ + out * HAIKU_OUT) / 1e6


# -- openai SDK ------------------------------------------------------------------------------------
def test_chat_non_stream_is_signed_translated_and_costed(gw, bedrock, finished):
    bedrock.push(fb.BedrockReply(body=fb.converse([{"text": "Hello from Bedrock!"}], fb.usage(20, 9, read=1000))))
    r = chat(gw).chat.completions.create(model="haiku", messages=[{"role": "system", "content": "Be brief"}, *MSGS],
                                         temperature=0.2, stop=["END"])
    assert r.choices[0].message.content == "Hello from Bedrock!" and r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.prompt_tokens_details.cached_tokens) == (1020, 9, 1000)
    seen = bedrock.requests[-1]
    assert seen.path == "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse" and seen.model == HAIKU
    assert seen.body["system"] == [{"text": "Be brief"}]
    assert seen.body["messages"] == [{"role": "user", "content": [{"text": "Say hello"}]}]
    assert seen.body["inferenceConfig"] == {"maxTokens": 4096, "temperature": 0.2, "stopSequences": ["END"]}
    assert {"host", "x-amz-date", "content-type"} <= set(seen.signed_headers)
    assert "x-amz-security-token" not in seen.headers and bedrock.refused == [] and bedrock.invalid == []
    ctx, cost = finished[-1]
    assert cost == pytest.approx(hand_cost(20, 9, 1000)) and cost == pytest.approx((20 * 0.8 + 1000 * 0.08 + 9 * 4) / 1e6)


def test_chat_stream_text_usage_and_cost(gw, bedrock, finished):
    bedrock.push(fb.BedrockReply(frames=fb.text_stream(["Hello", " from", " Bedrock!"], fb.usage(30, 7, read=200, write=50))))
    chunks = list(chat(gw).chat.completions.create(model="haiku", messages=MSGS, stream=True,
                                                   stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Bedrock!"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.prompt_tokens == 280 and chunks[-1].usage.completion_tokens == 7
    assert bedrock.requests[-1].path.endswith("/converse-stream")
    ctx, cost = finished[-1]
    assert (ctx.usage.input_tokens, ctx.usage.cached_tokens, ctx.usage.estimated) == (280, 200, False)
    assert cost == pytest.approx(hand_cost(30, 7, 200, write=50))
    assert ctx.timings.first_token > 0


def test_chat_tools_round_trip_stream_and_not(gw, bedrock):
    call = {"toolUse": {"toolUseId": "tooluse_abc123", "name": "get_weather", "input": {"location": "Paris"}}}
    bedrock.push(fb.BedrockReply(body=fb.converse([{"text": "Checking."}, call], fb.usage(50, 20), stop="tool_use")))
    r = chat(gw).chat.completions.create(model="haiku", messages=MSGS, tools=CHAT_TOOLS, tool_choice="required")
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls[0].id == "tooluse_abc123"
    assert orjson.loads(choice.message.tool_calls[0].function.arguments) == {"location": "Paris"}
    sent = bedrock.requests[-1].body["toolConfig"]
    assert sent == {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather in a city",
                                            "inputSchema": {"json": TOOLS[0]["input_schema"]}}}],
                    "toolChoice": {"any": {}}}
    # the answer goes back with the call and its result
    follow = [*MSGS, choice.message.model_dump(exclude_none=True),
              {"role": "tool", "tool_call_id": "tooluse_abc123", "content": "18C and sunny"}]
    bedrock.push(fb.BedrockReply(frames=fb.tool_stream("Again.", [("tooluse_2", "get_weather", ['{"loca', 'tion": "Rome"}'])],
                                                       fb.usage(80, 15))))
    chunks = list(chat(gw).chat.completions.create(model="haiku", messages=follow, tools=CHAT_TOOLS, stream=True))
    turns = bedrock.requests[-1].body["messages"]
    assert turns[1] == {"role": "assistant", "content": [{"text": "Checking."}, call]}
    assert turns[2] == {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_abc123",
                                                                    "content": [{"text": "18C and sunny"}]}}]}
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert calls[0].id == "tooluse_2" and calls[0].function.name == "get_weather"
    assert orjson.loads("".join(tc.function.arguments or "" for tc in calls)) == {"location": "Rome"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert bedrock.invalid == []


# -- anthropic SDK (Anthropic models on Bedrock from /v1/messages) ---------------------------------
def test_messages_non_stream_and_stream_with_system_and_tools(gw, bedrock, finished):
    call = {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"location": "Oslo"}}}
    bedrock.push(fb.BedrockReply(body=fb.converse([call], fb.usage(40, 12, read=500), stop="tool_use")))
    msg = messages(gw).messages.create(model="haiku", max_tokens=300, system="Be brief", messages=MSGS, tools=TOOLS,
                                       extra_body={"top_k": 5})
    assert msg.stop_reason == "tool_use" and msg.content[0].type == "tool_use"
    assert (msg.content[0].id, msg.content[0].input) == ("tooluse_1", {"location": "Oslo"})
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (40, 500, 12)
    sent = bedrock.requests[-1].body
    assert sent["system"] == [{"text": "Be brief"}] and sent["inferenceConfig"] == {"maxTokens": 300}
    assert sent["additionalModelRequestFields"] == {"top_k": 5}
    assert finished[-1][1] == pytest.approx(hand_cost(40, 12, 500))
    with messages(gw).messages.stream(model="haiku", max_tokens=300, messages=MSGS) as s:
        final = s.get_final_message()
    assert final.content[0].text == "Hello from Bedrock!" and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 9 and finished[-1][0].usage.input_tokens == 20
    assert bedrock.invalid == []


def test_messages_cache_control_and_tool_results_map_to_converse(gw, bedrock):
    history = [{"role": "user", "content": [{"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}]},
               {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "oops", "is_error": True}]}]
    messages(gw).messages.create(model="haiku", max_tokens=50, messages=history, tools=TOOLS)
    turns = bedrock.requests[-1].body["messages"]
    assert turns[0]["content"] == [{"text": "long context"}, {"cachePoint": {"type": "default"}}]
    assert turns[2]["content"] == [{"toolResult": {"toolUseId": "t1", "content": [{"text": "oops"}], "status": "error"}}]
    with pytest.raises(anthropic.BadRequestError) as exc:
        messages(gw).messages.create(model="haiku", max_tokens=50, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}])
    assert "base64" in exc.value.body["error"]["message"]


# -- errors --------------------------------------------------------------------------------------
def test_throttling_falls_back_to_the_next_alias(make_gateway, bedrock, aws_env, upstream, finished):
    gw = make_gateway(extra=bedrock_config(bedrock.url, 'fallbacks = ["gpt"]\nmax_attempts = 1'))
    bedrock.push(fb.error(429, "ThrottlingException", "Too many requests, please wait before trying again."))
    r = chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert r.choices[0].message.content == "Hello! How can I help you today?"
    assert finished[-1][0].target.provider == "up" and finished[-1][0].attempts == 2
    assert upstream.requests[-1].path == "/v1/chat/completions"


def test_throttling_without_fallback_is_429_in_each_callers_shape(gw, bedrock):
    bedrock.push(*[fb.error(429, "ThrottlingException", "Too many requests") for _ in range(6)])
    with pytest.raises(openai.RateLimitError) as exc:
        chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert exc.value.body["code"] == "rate_limit_exceeded"
    bedrock.script.clear()
    bedrock.push(*[fb.error(429, "ThrottlingException", "Too many requests") for _ in range(6)])
    with pytest.raises(anthropic.RateLimitError) as aexc:
        messages(gw).messages.create(model="haiku", max_tokens=10, messages=MSGS)
    assert aexc.value.body["type"] == "error" and aexc.value.body["error"]["type"] == "rate_limit_error"


def test_validation_error_is_400_in_each_callers_shape(gw, bedrock):
    bedrock.push(fb.error(400, "ValidationException", "The model returned the following errors: max_tokens too big"))
    with pytest.raises(openai.BadRequestError) as exc:
        chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert "max_tokens too big" in exc.value.body["message"] and exc.value.body["upstream_status"] == 400
    bedrock.push(fb.error(400, "ValidationException", "The model returned the following errors: max_tokens too big"))
    with pytest.raises(anthropic.BadRequestError) as aexc:
        messages(gw).messages.create(model="haiku", max_tokens=10, messages=MSGS)
    assert aexc.value.body["error"]["type"] == "invalid_request_error" and len(bedrock.requests) == 2


def test_access_denied_is_403_without_aws_details(gw, bedrock):
    bedrock.push(fb.error(403, "AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/gw is not "
                                                        "authorized to perform: bedrock:InvokeModel"))
    with pytest.raises(openai.PermissionDeniedError) as exc:
        chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert exc.value.body["code"] == "upstream_access_denied" and "123456789012" not in str(exc.value.body)


def test_wrong_secret_is_refused_by_the_signature_check(make_gateway, bedrock, aws_env):
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "wrong/" + fb.SECRET_KEY[6:])
    gw = make_gateway(extra=bedrock_config(bedrock.url))
    with pytest.raises(openai.APIStatusError) as exc:
        chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert bedrock.refused == ["InvalidSignatureException"] and bedrock.requests == []
    assert exc.value.status_code == 502 and exc.value.body["code"] == "upstream_auth_failed"


def test_session_token_is_signed_and_sent(make_gateway, bedrock, aws_env):
    aws_env.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEFAKE-session-token")
    gw = make_gateway(extra=bedrock_config(bedrock.url))
    chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    seen = bedrock.requests[-1]
    assert seen.headers["X-Amz-Security-Token"] == "FwoGZXIvYXdzEFAKE-session-token"
    assert "x-amz-security-token" in seen.signed_headers


def test_no_credentials_anywhere_is_a_clear_502(make_gateway, bedrock, aws_env):
    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    gw = make_gateway(extra=bedrock_config(bedrock.url))
    with pytest.raises(openai.APIStatusError) as exc:
        chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert exc.value.status_code == 502 and exc.value.body["code"] == "upstream_credentials_missing"
    assert bedrock.requests == [] and bedrock.refused == []


def test_secret_key_quoted_by_the_upstream_is_scrubbed(gw, bedrock):
    bedrock.push(fb.error(400, "ValidationException", f"bad request signed with {fb.SECRET_KEY}"))
    with pytest.raises(openai.BadRequestError) as exc:
        chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert fb.SECRET_KEY not in str(exc.value.body) and "[redacted]" in exc.value.body["message"]
    bedrock.push(fb.BedrockReply(frames=fb.text_stream(["the key is ", fb.SECRET_KEY[:10], fb.SECRET_KEY[10:]],
                                                       fb.usage(5, 5))))
    text = "".join(c.choices[0].delta.content or "" for c in chat(gw).chat.completions.create(
        model="haiku", messages=MSGS, stream=True) if c.choices)
    assert fb.SECRET_KEY not in text and "[redacted]" in text


def test_mid_stream_exception_ends_the_stream_in_each_callers_shape(gw, bedrock, finished):
    frames = fb.text_stream(["Partial ", "answer"], fb.usage(5, 5))[:3]
    bedrock.push(fb.BedrockReply(frames=frames + [fb.exception("modelStreamErrorException", "model crashed")]))
    got = []
    with pytest.raises(openai.APIError) as exc:
        for c in chat(gw).chat.completions.create(model="haiku", messages=MSGS, stream=True):
            got.append(c.choices[0].delta.content or "")
    assert "".join(got) == "Partial answer" and "ModelStreamErrorException" in str(exc.value)
    # the SDK raises at the error event, which the gateway sends before it ends the stream and records it
    deadline = time.monotonic() + 5
    while not finished and time.monotonic() < deadline:
        time.sleep(0.01)
    assert finished[-1][0].upstream_stream_error["type"] == "modelStreamErrorException"
    bedrock.push(fb.BedrockReply(frames=frames + [fb.exception("throttlingException", "slow down")]))
    with pytest.raises(anthropic.APIStatusError) as aexc:
        with messages(gw).messages.stream(model="haiku", max_tokens=10, messages=MSGS) as s:
            for _ in s:
                pass
    assert "rate limiting" in str(aexc.value)


def test_cut_and_corrupt_streams_end_with_an_error(gw, bedrock, finished):
    bedrock.push(fb.BedrockReply(frames=fb.text_stream(["Hello", " there"], fb.usage(5, 5)), reset_after=3))
    with pytest.raises(openai.APIError):
        list(chat(gw).chat.completions.create(model="haiku", messages=MSGS, stream=True))
    frames = fb.text_stream(["Hello", " there"], fb.usage(5, 5))
    broken = bytearray(frames[2])
    broken[-10] ^= 0xFF  # the payload no longer matches the message CRC
    bedrock.push(fb.BedrockReply(frames=frames[:2] + [bytes(broken)] + frames[3:]))
    with pytest.raises(openai.APIError) as exc:
        list(chat(gw).chat.completions.create(model="haiku", messages=MSGS, stream=True))
    assert "malformed" in str(exc.value) and finished[-1][0].error.code == "upstream_malformed_event"


# -- policies --------------------------------------------------------------------------------------
PII = {"guardrails.toml": """
[[guardrails]]
id = "contact-pii"
type = "pii"
entities = ["EMAIL_ADDRESS"]
action = "redact"
direction = "both"
"""}


def test_pii_in_a_streamed_answer_is_redacted(make_gateway, bedrock, aws_env):
    gw = make_gateway(extra=bedrock_config(bedrock.url), policies=PII)
    bedrock.push(fb.BedrockReply(frames=fb.text_stream(["Write to jane.d", "oe@exam", "ple.com today."], fb.usage(5, 9))))
    text = "".join(c.choices[0].delta.content or "" for c in chat(gw).chat.completions.create(
        model="haiku", messages=MSGS, stream=True) if c.choices)
    assert "jane.doe@example.com" not in text and "<EMAIL_ADDRESS>" in text and text.endswith("today.")
    bedrock.push(fb.BedrockReply(frames=fb.text_stream(["Mail jane.doe@", "example.com"], fb.usage(5, 9))))
    with messages(gw).messages.stream(model="haiku", max_tokens=20, messages=[
            {"role": "user", "content": "my mail is bob@example.org"}]) as s:
        final = s.get_final_message()
    assert "jane.doe@example.com" not in final.content[0].text
    assert "bob@example.org" not in orjson.dumps(bedrock.requests[-1].body).decode()


def test_usd_budget_over_a_bedrock_alias_is_enforced(make_gateway, bedrock, aws_env):
    gw = make_gateway(extra=bedrock_config(bedrock.url), policies={"budgets.toml": """
[[budgets]]
id = "frozen"
scope = "team"
usd = 0.0
window = "month"
"""})
    with pytest.raises(openai.RateLimitError):
        chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert bedrock.requests == []


# -- an assumed role, refreshed off the loop ------------------------------------------------------------
@pytest.fixture
def sts(servers, bedrock, aws_env):
    fake = fb.FakeSts(bedrock)
    fake.url = servers.serve(fake.app())
    aws_env.setenv("AWS_ENDPOINT_URL_STS", fake.url)
    yield fake
    servers.stop_app(fake.url)


def test_role_is_assumed_with_the_chains_credentials(make_gateway, bedrock, sts):
    gw = make_gateway(extra=bedrock_config(bedrock.url, provider='role_arn = "arn:aws:iam::123456789012:role/gw"\n'
                                                                 'role_session_name = "gw-test"'))
    for _ in range(3):
        chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert len(sts.calls) == 1, "credentials are cached while they are fresh"
    call = sts.calls[0]
    assert (call["Action"], call["RoleArn"], call["RoleSessionName"]) == (
        "AssumeRole", "arn:aws:iam::123456789012:role/gw", "gw-test")
    assert call["caller"] == fb.ACCESS_KEY
    assert {r.access_key for r in bedrock.requests} == {"ASIAROLE000000000001"}
    assert bedrock.requests[-1].headers["X-Amz-Security-Token"] == "role-session-token-1"


def test_credentials_near_expiry_are_refreshed_in_the_background(make_gateway, bedrock, sts):
    """Role credentials 12 minutes from expiry are inside the advisory window (15) but not the mandatory
    one (10): a request signs with them at once while one refresh runs in a thread (blockbuster fails
    the test if anything of it ran on the loop); later requests sign with the new ones."""
    sts.lifetime_s = 12 * 60
    gw = make_gateway(extra=bedrock_config(bedrock.url, provider='role_arn = "arn:aws:iam::123456789012:role/gw"'))
    chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert len(sts.calls) == 1 and bedrock.requests[-1].access_key == "ASIAROLE000000000001"
    sts.lifetime_s = 3600
    chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert bedrock.requests[-1].access_key == "ASIAROLE000000000001", "signed with the cached credentials"
    deadline = time.monotonic() + 10
    while len(sts.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert len(sts.calls) == 2 and bedrock.requests[-1].access_key == "ASIAROLE000000000002"
    chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert len(sts.calls) == 2


def test_expired_credentials_are_resolved_again(make_gateway, bedrock, aws_env):
    """AWS refusing the token as expired makes the next request resolve the chain again (in a thread),
    so rotated credentials are picked up without a restart."""
    gw = make_gateway(extra=bedrock_config(bedrock.url))
    chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    bedrock.push(fb.error(403, "ExpiredTokenException", "The security token included in the request is expired"))
    with pytest.raises(openai.APIStatusError) as exc:
        chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert exc.value.status_code == 502 and exc.value.body["code"] == "upstream_auth_failed"
    rotated = ("AKIAROTATEDKEY000002", "rotated/secret+0123456789abcdefghijklmn")
    bedrock.keys = dict([rotated])  # the old key no longer works anywhere
    aws_env.setenv("AWS_ACCESS_KEY_ID", rotated[0])
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", rotated[1])
    chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert bedrock.requests[-1].access_key == rotated[0] and bedrock.refused == []


def test_messages_tool_use_stream(gw, bedrock):
    bedrock.push(fb.BedrockReply(frames=fb.tool_stream("Looking.", [("tooluse_9", "get_weather", ['{"location"', ': "Lima"}'])],
                                                       fb.usage(30, 12))))
    with messages(gw).messages.stream(model="haiku", max_tokens=100, messages=MSGS, tools=TOOLS,
                                      tool_choice={"type": "tool", "name": "get_weather"}) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"] and final.stop_reason == "tool_use"
    assert (final.content[1].id, final.content[1].input) == ("tooluse_9", {"location": "Lima"})
    assert final.usage.output_tokens == 12
    assert bedrock.requests[-1].body["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}

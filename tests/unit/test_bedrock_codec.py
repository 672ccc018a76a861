"""The Bedrock wire pieces with literal inputs: the event-stream framer (botocore's parser), the Converse
decoder, the Messages -> Converse request mapping (checked against botocore's bedrock-runtime model) and
the error mapping. The fake upstream's frames are read back with botocore's own client-side stream
parser first, so the fake speaks what boto3 reads."""

from __future__ import annotations

import pytest
from botocore.eventstream import EventStream, EventStreamError
from botocore.parsers import EventStreamJSONParser
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codecs import Malformed
from gateway.codecs.aws_eventstream import EventStreamFramer
from gateway.codecs.bedrock_converse import ConverseDecoder
from gateway.errors import BadRequest, Forbidden, GatewayError, Overloaded, RateLimited, UpstreamError
from gateway.events import End, Error, Finish, PartEnd, Start, TextDelta, ToolCallDelta, UsageReport
from gateway.pricing import Pricing
from gateway.translate.anthropic_to_converse import messages_to_converse
from gateway.translate.upstream_errors import bedrock_error_to_gateway, bedrock_stream_error
from tests.support import fake_bedrock as fb

TOOL_STREAM = fb.tool_stream("Let me look.", [("tooluse_1", "get_weather", ['{"city":', ' "Oslo"}'])],
                             fb.usage(10, 20, read=100, write=5))
WIRE = b"".join(TOOL_STREAM)


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self):
        yield self.data

    def close(self) -> None:
        pass


def test_the_fakes_frames_are_what_botocores_client_reads():
    shape = fb.MODEL.operation_model("ConverseStream").output_shape.members["stream"]
    events = [{k: v for k, v in e.items() if k != "ResponseMetadata"}
              for e in EventStream(_Raw(WIRE), shape, EventStreamJSONParser(), "ConverseStream")]
    assert len(events) == len(TOOL_STREAM)
    assert events[0] == {"messageStart": {"role": "assistant"}}
    assert events[3] == {"contentBlockStart": {"contentBlockIndex": 1,
                                               "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}}}
    assert events[-1]["metadata"]["usage"]["cacheWriteInputTokens"] == 5
    with pytest.raises(EventStreamError) as exc:
        list(EventStream(_Raw(fb.exception("modelStreamErrorException", "boom")), shape, EventStreamJSONParser(),
                         "ConverseStream"))
    assert exc.value.response["Error"] == {"Code": "modelStreamErrorException", "Message": "boom"}


def _decode(chunks: list[bytes]) -> list:
    framer, dec, out = EventStreamFramer(), ConverseDecoder(), []
    for c in chunks:
        for ev in framer.feed(c):
            out += dec.feed(ev)
    for ev in framer.close():
        out += dec.feed(ev)
    return out + dec.end()


def test_a_tool_stream_decodes_to_neutral_events():
    events = _decode([WIRE])
    assert events[0] == Start(None, None)
    assert [type(e) for e in events[1:]] == [TextDelta, PartEnd, ToolCallDelta, ToolCallDelta, ToolCallDelta, PartEnd,
                                             Finish, UsageReport, End]
    assert events[1].text == "Let me look." and events[2] == PartEnd(0, None)
    assert (events[3].index, events[3].id, events[3].name) == (0, "tooluse_1", "get_weather")
    assert events[4].arguments + events[5].arguments == '{"city": "Oslo"}' and events[6] == PartEnd(0, 0)
    assert events[7] == Finish(0, "tool_calls")
    usage = events[8].usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (115, 20, 100) and events[8].complete


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(WIRE)), max_size=12))
def test_frames_split_anywhere_decode_the_same(cuts):
    points = sorted(set(cuts))
    chunks = [WIRE[a:b] for a, b in zip([0, *points], [*points, len(WIRE)])]
    assert _decode(chunks) == _decode([WIRE])


def test_a_corrupt_frame_is_malformed_and_a_cut_stream_is_an_error():
    broken = bytearray(WIRE)
    broken[len(TOOL_STREAM[0]) + 30] ^= 0x01
    with pytest.raises(Malformed):
        EventStreamFramer().feed(bytes(broken))
    cut = _decode([WIRE[: len(WIRE) - len(TOOL_STREAM[-1]) - len(TOOL_STREAM[-2]) - 7]])
    assert type(cut[-1]) is Error and cut[-1].code == "upstream_stream_error"
    no_metadata = _decode([b"".join(TOOL_STREAM[:-1])])
    assert type(no_metadata[-1]) is End and not any(type(e) is UsageReport for e in no_metadata)


def test_a_stream_exception_is_an_error_event():
    framer, dec = EventStreamFramer(), ConverseDecoder()
    (ev,) = framer.feed(fb.exception("validationException", "input is too long"))
    (err,) = dec.feed(ev)
    assert type(err) is Error and err.code == "invalid_request" and err.message == "input is too long"
    assert dec.feed(framer.feed(TOOL_STREAM[1])[0]) == [], "nothing is read after an error"


FULL = {
    "model": "haiku", "max_tokens": 200, "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"],
    "system": [{"type": "text", "text": "Be brief", "cache_control": {"type": "ephemeral"}}],
    "metadata": {"user_id": "u-1"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "tool", "name": "get_weather"},
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Look"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                                     {"type": "document", "title": "Q3 report.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig=="},
                                          {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "cold"}]}]},
    ],
}


def test_messages_map_to_a_converse_body_that_botocores_model_accepts():
    out = messages_to_converse(FULL)
    assert fb.check_shape({"modelId": "m", **out}, "ConverseStreamRequest") is None
    assert out["system"] == [{"text": "Be brief"}, {"cachePoint": {"type": "default"}}]
    assert out["inferenceConfig"] == {"maxTokens": 200, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]}
    assert out["additionalModelRequestFields"] == {"top_k": 40, "thinking": {"type": "enabled", "budget_tokens": 1024}}
    assert out["requestMetadata"] == {"user_id": "u-1"}
    assert out["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}
    user, assistant, result = out["messages"]
    assert user["content"][1] == {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
    assert user["content"][2]["document"]["name"] == "Q3 reportpdf"
    assert assistant["content"][0] == {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig=="}}}
    assert result["content"] == [{"toolResult": {"toolUseId": "t1", "content": [{"text": "cold"}]}}]


@pytest.mark.parametrize("change, param", [
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
    ({"tools": FULL["tools"], "tool_choice": {"type": "none"}}, "tool_choice"),
    ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, "mcp_servers"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "search_result", "source": "s", "title": "t", "content": []}]}]},
     "messages[0].content[0]"),
])
def test_what_converse_cannot_carry_is_refused_by_name(change, param):
    with pytest.raises(BadRequest) as exc:
        messages_to_converse({**FULL, **change})
    assert exc.value.param == param


@pytest.mark.parametrize("status, kind, cls, code", [
    (429, "throttlingexception", RateLimited, "rate_limit_exceeded"),
    (400, "validationexception", BadRequest, "invalid_request"),
    (403, "accessdeniedexception", Forbidden, "upstream_access_denied"),
    (403, "invalidsignatureexception", UpstreamError, "upstream_auth_failed"),
    (403, "unrecognizedclientexception", UpstreamError, "upstream_auth_failed"),
    (503, "serviceunavailableexception", Overloaded, "overloaded"),
    (424, "modelerrorexception", UpstreamError, "upstream_model_error"),
])
def test_bedrock_errors_map_by_type(status, kind, cls, code):
    err = bedrock_error_to_gateway(status, kind, b'{"message": "m"}')
    assert type(err) is cls and err.code == code and err.upstream_status == status


def test_stream_exceptions_map_by_type():
    assert bedrock_stream_error("throttlingException", {}).status == 429
    assert bedrock_stream_error("modelStreamErrorException", {"message": "x"}).code == "upstream_stream_error"
    err: GatewayError = bedrock_stream_error("internalServerException", {"message": "secret internals"})
    assert err.status == 502 and "secret internals" not in err.message


@pytest.mark.parametrize("model, price", [
    ("anthropic.claude-3-5-haiku-20241022-v1:0", (0.80, 4.0, 0.08)),
    ("us.anthropic.claude-sonnet-4-20250514-v1:0", (3.0, 15.0, 0.30)),
    ("global.anthropic.claude-haiku-4-5-20251001-v1:0", (1.0, 5.0, 0.10)),
    ("amazon.nova-lite-v1:0", (0.06, 0.24, 0.015)),
    ("eu.amazon.nova-micro-v1:0", (0.035, 0.14, 0.00875)),
    ("meta.llama3-1-70b-instruct-v1:0", (0.72, 0.72, 0.72)),
])
def test_bedrock_model_ids_and_inference_profiles_have_published_prices(model, price):
    p = Pricing.compile().price(model)
    assert p is not None and (p.input, p.output, p.cached_input) == price
    assert Pricing.compile().price("xx.anthropic.claude-3-5-haiku-20241022-v1:0") is None

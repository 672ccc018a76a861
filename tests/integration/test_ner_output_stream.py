"""The NER tier scans streamed output: a name split across chunks reaches the caller redacted.

Through the official openai SDK over real sockets, a fake upstream that streams the answer in pieces
(every split point of the name, and token-sized pieces), with a rule whose direction is output only,
so the prompt is left alone and only the answer is NER-scanned.
"""

from __future__ import annotations

import openai
import pytest

from gateway.guardrails.pii import ner_available
from tests.integration.test_guardrails_http import json_answer, sse_answer
from tests.support.fake_upstream import Reply
from tests.support.gateway import TEST_KEY

pytestmark = pytest.mark.skipif(not ner_available(), reason="the NER tier is not installed")

OUTPUT_NAMES = {"guardrails.toml": """
[[guardrails]]
id = "names-out"
type = "pii"
entities = ["PERSON"]
ner = true
ner_timeout_ms = 10000
action = "redact"
direction = "output"
"""}
INPUT_NAMES = {"guardrails.toml": OUTPUT_NAMES["guardrails.toml"].replace('"output"', '"input"')}

ANSWER = "Sure. Please follow up with Anna Karenina about the invoice, she signs the cheques."
NAME = "Anna Karenina"


def ask(gw, stream: bool) -> str:
    client = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)
    msgs = [{"role": "user", "content": "Who handles the invoice? Ask Peter Parker."}]
    if stream:
        chunks = client.chat.completions.create(model="gpt", messages=msgs, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return client.chat.completions.create(model="gpt", messages=msgs).choices[0].message.content


def test_a_name_split_at_every_point_of_a_stream_is_redacted(make_gateway, upstream):
    gw = make_gateway(policies=OUTPUT_NAMES)
    at = ANSWER.index(NAME)
    for cut in range(at, at + len(NAME) + 1):  # before, inside and after the name
        upstream.push(Reply(sse=sse_answer([ANSWER[:cut], ANSWER[cut:]])))
        answer = ask(gw, stream=True)
        assert NAME not in answer and "Anna" not in answer and "Karenina" not in answer, (cut, answer)
        assert answer == ANSWER.replace(NAME, "<PERSON>"), (cut, answer)
        # direction = "output": the prompt went up as written
        assert "Peter Parker" in upstream.requests[-1].body["messages"][0]["content"]


def test_a_name_in_token_sized_pieces_is_redacted_and_the_rest_arrives_intact(make_gateway, upstream):
    gw = make_gateway(policies=OUTPUT_NAMES)
    for size in (1, 2, 3, 5):
        upstream.push(Reply(sse=sse_answer([ANSWER[i : i + size] for i in range(0, len(ANSWER), size)])))
        assert ask(gw, stream=True) == ANSWER.replace(NAME, "<PERSON>"), size


def test_a_whole_answer_is_ner_scanned_too(make_gateway, upstream):
    gw = make_gateway(policies=OUTPUT_NAMES)
    upstream.push(Reply(body=json_answer(ANSWER)))
    assert ask(gw, stream=False) == ANSWER.replace(NAME, "<PERSON>")


def test_an_input_only_ner_rule_leaves_the_streamed_answer_alone(make_gateway, upstream):
    gw = make_gateway(policies=INPUT_NAMES)
    upstream.push(Reply(sse=sse_answer([ANSWER[:31], ANSWER[31:]])))
    assert ask(gw, stream=True) == ANSWER
    assert "Peter Parker" not in upstream.requests[-1].body["messages"][0]["content"]


def test_a_cache_hit_is_ner_scanned_streamed_and_whole(make_gateway, upstream):
    """Under a [[cache]] rule (#18) the hit goes through the NER tier like an upstream's answer: the name is
    redacted on the miss, kept redacted at rest, and redacted again on streamed and whole hits."""
    cache = {"cache.toml": '[[cache]]\nid = "exact"\nttl_s = 60\nmax_temperature = 2.0\n'}
    gw = make_gateway(policies={**OUTPUT_NAMES, **cache})
    upstream.push(Reply(sse=sse_answer([ANSWER[i : i + 7] for i in range(0, len(ANSWER), 7)])))
    expected = ANSWER.replace(NAME, "<PERSON>")
    assert ask(gw, stream=True) == expected  # the miss
    assert ask(gw, stream=True) == expected  # a streamed hit, cut into pieces again
    assert ask(gw, stream=False) == expected  # a whole hit
    assert len(upstream.requests) == 1


def responses_sse(pieces: list[str]) -> bytes:
    """The recorded Responses stream (tests/fixtures/transcripts) with its text deltas replaced by `pieces`."""
    import orjson

    from tests.support.fake_upstream import sse_events, transcript

    out, text = [], "".join(pieces)
    for raw in sse_events(transcript("openai_responses_stream_text.sse")):
        head, _, data = raw.partition(b"data: ")
        doc = orjson.loads(data)
        if doc["type"] == "response.output_text.delta":
            if pieces:
                for piece in pieces:
                    out.append(head + b"data: " + orjson.dumps({**doc, "delta": piece}) + b"\n\n")
                pieces = []
            continue
        if doc["type"] == "response.output_text.done":
            doc["text"] = text
        elif doc["type"] == "response.content_part.done":
            doc["part"]["text"] = text
        elif doc["type"] in ("response.output_item.done", "response.completed"):
            item = doc["item"] if "item" in doc else doc["response"]["output"][0]
            item["content"][0]["text"] = text
        out.append(head + b"data: " + orjson.dumps(doc) + b"\n\n")
    return b"".join(out)


def test_a_name_split_across_a_responses_stream_is_redacted(make_gateway, upstream):
    """The Responses API's streams get the NER tier's findings too (they are not on the event model)."""
    gw = make_gateway(policies=OUTPUT_NAMES)
    client = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)
    at = ANSWER.index(NAME)
    for cut in (at + 2, at + 6, at + len(NAME) - 1):
        upstream.push(Reply(sse=responses_sse([ANSWER[:cut], ANSWER[cut:]])))
        deltas, final = [], None
        for event in client.responses.create(model="gpt", input="Who handles the invoice?", stream=True):
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            elif event.type == "response.completed":
                final = event.response.output_text
        answer = "".join(deltas)
        assert answer == ANSWER.replace(NAME, "<PERSON>"), (cut, answer)
        assert final == answer, (cut, final)

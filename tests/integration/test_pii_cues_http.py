"""PII after a clear cue is redacted on every path, and redaction never eats the words around an entity.

Through the official SDKs: the prompt the upstream receives, the streamed and the non-streamed answer,
for each caller API and each translation (chat -> OpenAI, chat -> Anthropic, messages -> Anthropic,
messages -> OpenAI). The SSN values are structurally valid numbers that Presidio's sample-value list
used to veto even right after "SSN"; people type exactly these.
"""

from __future__ import annotations

import anthropic
import openai
import orjson
import pytest

from gateway.guardrails.pii import ner_available
from tests.integration.test_guardrails_http import json_answer, sse_answer
from tests.support.fake_upstream import Reply
from tests.support.gateway import TEST_KEY

POLICIES = {"guardrails.toml": """
[[guardrails]]
id = "contact-pii"
type = "pii"
entities = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"]
action = "redact"
direction = "both"
"""}
NAMES = {"guardrails.toml": """
[[guardrails]]
id = "names"
type = "pii"
entities = ["PERSON", "EMAIL_ADDRESS"]
ner = true
ner_timeout_ms = 10000
action = "redact"
direction = "both"
"""}
CLAUDE = """
[providers.claude]
type = "anthropic"
base_url = "{url}/v1"
api_key_env = "TEST_UPSTREAM_KEY"

[models.claude]
targets = [{{ provider = "claude", model = "claude-sonnet-4-5" }}]
"""

# (value as written, the cue sentence): sample values, all-same-digit and undelimited forms.
SSN_CASES = [
    ("123-45-6789", "My SSN is {v}, please update the form."),
    ("078-05-1120", "social security number: {v} for the claim"),
    ("222-22-2222", "SSN {v}"),
    ("111-11-1111", "my social security no. is {v}."),
    ("123456789", "SSN: {v} on file"),
]
PATHS = ["chat->openai", "chat->anthropic", "messages->anthropic", "messages->openai"]


def anthropic_json(text: str) -> bytes:
    return orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                         "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                         "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 9}})


def anthropic_sse(pieces: list[str]) -> bytes:
    def ev(name: str, data: dict) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    out = [ev("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}})]
    out += [ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": p}}) for p in pieces]
    out += [ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": {"output_tokens": 9}}),
            ev("message_stop", {"type": "message_stop"})]
    return b"".join(out)


def split(text: str) -> list[str]:
    """The answer in small pieces, so an entity straddles several stream events."""
    return [text[i : i + 4] for i in range(0, len(text), 4)]


class Path:
    def __init__(self, gw, upstream, name: str) -> None:
        self.upstream = upstream
        self.caller, self.provider = name.split("->")
        self.model = "claude" if self.provider == "anthropic" else "gpt"
        self.chat = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)
        self.messages = anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)

    def push_answer(self, text: str, stream: bool) -> None:
        if self.provider == "anthropic":
            self.upstream.push(Reply(sse=anthropic_sse(split(text))) if stream else Reply(body=anthropic_json(text)))
        else:
            self.upstream.push(Reply(sse=sse_answer(split(text))) if stream else Reply(body=json_answer(text)))

    def ask(self, prompt: str, stream: bool) -> str:
        """The answer text the caller sees."""
        msgs = [{"role": "user", "content": prompt}]
        if self.caller == "chat":
            if stream:
                r = self.chat.chat.completions.create(model=self.model, messages=msgs, stream=True)
                return "".join(c.choices[0].delta.content or "" for c in r if c.choices)
            return self.chat.chat.completions.create(model=self.model, messages=msgs).choices[0].message.content
        if stream:
            with self.messages.messages.stream(model=self.model, max_tokens=50, messages=msgs) as s:
                return "".join(s.text_stream)
        r = self.messages.messages.create(model=self.model, max_tokens=50, messages=msgs)
        return "".join(b.text for b in r.content if b.type == "text")

    def sent_prompt(self) -> str:
        content = self.upstream.requests[-1].body["messages"][-1]["content"]
        return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


@pytest.fixture
def ssn_gateway(make_gateway, upstream):
    return make_gateway(extra=CLAUDE.format(url=upstream.url), policies=POLICIES)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_ssn_after_a_cue_is_redacted_in_prompt_and_answer(ssn_gateway, upstream, path, stream):
    p = Path(ssn_gateway, upstream, path)
    for value, sentence in SSN_CASES:
        text = sentence.format(v=value)
        p.push_answer("Noted. " + text + " Anything else?", stream)
        answer = p.ask(text, stream)
        sent = p.sent_prompt()
        assert value not in sent and "<US_SSN>" in sent, (path, sent)
        assert value not in answer and "<US_SSN>" in answer, (path, stream, answer)
        assert answer.endswith(" Anything else?")


@pytest.mark.parametrize("value", ["000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567", "123-45-0000"])
def test_impossible_ssn_structures_still_pass_through(ssn_gateway, upstream, value):
    # Never issued (area 000, 666 or 9xx, group 00, serial 0000): not an SSN even after the cue.
    p = Path(ssn_gateway, upstream, "chat->openai")
    p.push_answer("ok", False)
    p.ask(f"SSN {value} is invalid, why?", False)
    assert value in p.sent_prompt()


NAME_CASES = [
    ("call me maybe tomorrow", "call me maybe tomorrow"),
    ("Please follow up with Anna about the invoice.", "Please follow up with <PERSON> about the invoice."),
    ("You can call me Bob if you like.", "You can call me <PERSON> if you like."),
    ("Dear Maria, thanks for the update.", "Dear <PERSON>, thanks for the update."),
]


@pytest.mark.skipif(not ner_available(), reason="the NER tier is not installed")
@pytest.mark.parametrize("path", ["chat->openai", "messages->anthropic"])
def test_name_cue_redacts_the_name_and_nothing_after_it(make_gateway, upstream, path):
    gw = make_gateway(extra=CLAUDE.format(url=upstream.url), policies=NAMES)
    p = Path(gw, upstream, path)
    for text, expected in NAME_CASES:
        for stream in (False, True):
            p.push_answer(text, stream)
            answer = p.ask(text, stream)
            assert p.sent_prompt() == expected
            assert answer == expected, (stream, answer)  # direction = "both": the answer is NER-scanned too

"""The chat stream adapter with an output scanner, fed a literal SSE transcript: the exact bytes a
client gets (held-back chunks dropped, flushed text in a chunk with the latest chunk's fields, the
usage chunk and `usage` fields only when asked for)."""

from __future__ import annotations

import orjson
import pytest

from gateway.adapters.chat_openai import ChatOpenAI
from gateway.config.validate import SourcedRule
from gateway.context import RequestContext
from gateway.guardrails.engine import Guardrails
from gateway.translate.sse import SSEParser

EMAILS = Guardrails.compile([SourcedRule("test.toml", "guardrails[0]", {"id": "pii", "type": "pii",
                                                                         "entities": ["EMAIL_ADDRESS"],
                                                                         "direction": "output"})])
USAGE = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}


def _event(delta: dict, finish: str | None = None, fp: str = "fp1", usage: dict | None = None,
           choices: bool = True) -> bytes:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "system_fingerprint": fp,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [], "usage": usage}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _run(transcript: list[bytes], include_usage: bool) -> list[bytes]:
    ctx = RequestContext("req", "chat", "openai", None, 0.0, "trace", "span", body={})
    ctx.include_usage = include_usage
    scanner = EMAILS.for_request(None, None).output_scanner(ctx)
    stream, parser, data = ChatOpenAI().stream(ctx, scanner), SSEParser(), b""
    for piece in transcript:
        for event in parser.feed(piece):
            data += stream.feed(event)
    data += stream.finish()
    stream.close()
    return [e + b"\n\n" for e in data.split(b"\n\n") if e]  # one item per client event


# An address split over two chunks, then a word held back until the finishing chunk (whose
# system_fingerprint differs: the flushed text carries the latest one).
SPLIT = [_event({"role": "assistant", "content": ""}), _event({"content": "Write to jane.d"}),
         _event({"content": "oe@example.com"}), _event({"content": " now"}), _event({}, "stop", fp="fp2"),
         _event({}, usage=USAGE, choices=False), b"data: [DONE]\n\n"]
HEAD = b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":'


@pytest.mark.parametrize("include_usage", [False, True])
def test_split_address_is_redacted_and_chunks_are_exact(include_usage: bool) -> None:
    null = b',"usage":null' if include_usage else b""
    expected = [
        HEAD + b'"fp1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]'
        + null + b"}\n\n",
        HEAD + b'"fp1","choices":[{"index":0,"delta":{"content":"Write to "},"finish_reason":null}]' + null + b"}\n\n",
        # "oe@example.com" completes the address: the chunk after the split still redacts it whole.
        HEAD + b'"fp1","choices":[{"index":0,"delta":{"content":"<EMAIL_ADDRESS> "},"finish_reason":null}]'
        + null + b"}\n\n",
        HEAD + b'"fp2","choices":[{"index":0,"delta":{"content":"now"},"finish_reason":null}]}\n\n',
        HEAD + b'"fp2","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]' + null + b"}\n\n",
    ]
    if include_usage:
        expected.append(SPLIT[5])  # the usage chunk, as the upstream sent it
    expected.append(b"data: [DONE]\n\n")
    assert _run(SPLIT, include_usage) == expected

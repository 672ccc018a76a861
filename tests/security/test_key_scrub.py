"""A provider's own credential, quoted back by its upstream, never reaches a caller, a record or a log in
any form the reader could decode: JSON `\\uXXXX` escapes (either hex case), `\\/`, percent-encoding, or split
across two SSE events or two TCP reads. And a placeholder key too short to be a secret (`none`, `x`)
leaves the answer untouched.

Every path is driven through the official SDKs against the fake upstream: Chat Completions, Messages
(native and translated both ways), Responses and embeddings; errors (4xx/5xx), whole answers and streams.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import anthropic
import openai
import orjson
import pytest

from gateway.providers.key_scrub import HOLD_FROM
from tests.support.fake_upstream import Reply, transcript
from tests.support.gateway import TEST_KEY, UPSTREAM_SECRET, write_config

KEY = UPSTREAM_SECRET
ROOT = Path(__file__).resolve().parents[2]
MSGS = [{"role": "user", "content": "Say hello"}]


def config(upstream_url: str) -> str:
    return f"""
policies = ["policies/*.toml"]

[server]
first_byte_timeout_s = 5
idle_timeout_s = 2
total_timeout_s = 20

[providers.up]
type = "openai"
base_url = "{upstream_url}/v1"
api_key_env = "TEST_UPSTREAM_KEY"

[providers.anth]
type = "anthropic"
base_url = "{upstream_url}/v1"
api_key_env = "TEST_UPSTREAM_KEY"

[models.gpt]
targets = [{{ provider = "up", model = "gpt-4o-mini" }}]
max_attempts = 1
breaker_failures = 1000

[models.claude]
targets = [{{ provider = "anth", model = "claude-sonnet-4-5" }}]
max_attempts = 1
breaker_failures = 1000

[providers.mock]
type = "mock"

[models.demo]
targets = [{{ provider = "mock", model = "mock-1" }}]

[audit]
flush_interval_ms = 2
log_payloads = true
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
"""


# -- how an upstream might write the key, and how a reader might decode it ---------------------------

def esc(text: str, every: int = 2, start: int = 0) -> str:
    """`text` for the inside of a JSON string, every `every`-th character as a \\u escape (hex case mixed)."""
    out = []
    for i, c in enumerate(text):
        if (i + start) % every == 0:
            out.append(("\\u%04x" if i % 4 else "\\u%04X") % ord(c))
        elif c == "/":
            out.append("\\/")
        else:
            out.append(c)
    return "".join(out)


def readable_forms(text: str) -> set[str]:
    """What a reader can get from `text` by undoing JSON escapes and percent-encoding, twice over."""
    forms = {text}
    for _ in range(2):
        for t in list(forms):
            forms.add(re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), t).replace("\\/", "/"))
            forms.add(urllib.parse.unquote(t))
    return forms


def assert_no_key(where: str, text: str | bytes, key: str = KEY) -> None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for form in readable_forms(text):
        assert key not in form, f"the provider key is readable in {where}: {form[max(form.find(key) - 80, 0):][:300]!r}"


def records_text(cfg: Path, n: int, timeout: float = 10) -> str:
    path = cfg.parent / "audit" / "records.jsonl"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"expected {n} records in {path}")


@pytest.fixture
def gw(make_gateway, upstream):
    return make_gateway(main=config(upstream.url))


def oa(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


def an(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0)


# -- the calls: each returns everything the caller saw as text -------------------------------------

def call(gw, path: str, stream: bool) -> str:
    """One SDK call; the caller's view: raw body (or error) and the text it assembled."""
    seen: list[str] = []
    try:
        if path == "chat/gpt" or path == "chat/claude":
            model = path.split("/")[1]
            if stream:
                for chunk in oa(gw).chat.completions.create(model=model, messages=MSGS, stream=True):
                    seen.append(chunk.model_dump_json())
                    seen.append("".join(c.delta.content or "" for c in chunk.choices))
                seen.append("TEXT:" + "".join(s for s in seen[1::2]))
            else:
                raw = oa(gw).chat.completions.with_raw_response.create(model=model, messages=MSGS)
                seen += [raw.http_response.text, "TEXT:" + (raw.parse().choices[0].message.content or "")]
        elif path == "messages/claude" or path == "messages/gpt":
            model = path.split("/")[1]
            if stream:
                texts = []
                with an(gw).messages.stream(model=model, max_tokens=50, messages=MSGS) as s:
                    for event in s:
                        seen.append(event.model_dump_json())
                    texts.append("".join(b.text for b in s.get_final_message().content if b.type == "text"))
                seen.append("TEXT:" + "".join(texts))
            else:
                raw = an(gw).messages.with_raw_response.create(model=model, max_tokens=50, messages=MSGS)
                msg = raw.parse()
                seen += [raw.http_response.text, "TEXT:" + "".join(b.text for b in msg.content if b.type == "text")]
        elif path == "responses/gpt":
            if stream:
                deltas = []
                for event in oa(gw).responses.create(model="gpt", input="Say hello", stream=True):
                    seen.append(event.model_dump_json())
                    if event.type == "response.output_text.delta":
                        deltas.append(event.delta)
                seen.append("TEXT:" + "".join(deltas))
            else:
                raw = oa(gw).responses.with_raw_response.create(model="gpt", input="Say hello")
                seen += [raw.http_response.text, "TEXT:" + raw.parse().output_text]
        elif path == "embeddings/gpt":
            raw = oa(gw).embeddings.with_raw_response.create(model="gpt", input="hello")
            seen += [raw.http_response.text, "TEXT:" + raw.parse().model]
        else:
            raise AssertionError(path)
    except (openai.APIStatusError, anthropic.APIStatusError) as exc:
        seen += [exc.response.text, "ERROR:" + str(exc)]
    return "\n".join(seen)


def text_of(seen: str) -> str:
    return seen.rsplit("TEXT:", 1)[1] if "TEXT:" in seen else ""


WIRE = {"chat/gpt": "openai", "chat/claude": "anthropic", "messages/claude": "anthropic", "messages/gpt": "openai",
        "responses/gpt": "responses", "embeddings/gpt": "openai"}


# -- upstream replies that carry the key -------------------------------------------------------------

def error_reply(wire: str, status: int, key: str = KEY) -> Reply:
    quoted = esc(key)
    pct = urllib.parse.quote(key, safe="")
    pct_all = "".join(f"%{b:02X}" for b in key.encode())
    msg = f"Incorrect API key provided: {quoted}. Retry at https://u.example/v1?key%3D{pct}&k={pct_all}"
    if wire == "anthropic":
        body = '{"type":"error","error":{"type":"invalid_request_error","message":"%s"}}' % msg
    else:
        body = '{"error":{"message":"%s","type":"invalid_request_error","param":"%s","code":"%s"}}' % (
            msg, esc(key, 3), esc(key, 2, 1))
    return Reply(status=status, body=body.encode())


def whole_reply(wire: str, path: str, key: str = KEY) -> Reply:
    text = f"key: {esc(key)} done".encode()
    if path == "embeddings/gpt":
        return Reply(body=b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],'
                          b'"model":"' + esc(key, 3).encode() + b'","usage":{"prompt_tokens":1,"total_tokens":1}}')
    name = {"openai": "openai_chat_text.json", "anthropic": "anthropic_message_text.json",
            "responses": "openai_responses_text.json"}[wire]
    body = transcript(name)
    old = {"openai": b"Hello! How can I help you today?", "anthropic": b"Hello! How can I help you today?",
           "responses": b"Hello! How can I help you today?"}[wire]
    assert old in body, name
    return Reply(body=body.replace(old, text))


def stream_reply(wire: str, key: str = KEY, cut: int = 10, tcp_cut: int = 4, every: int = 2) -> Reply:
    """The key's first `cut` characters end one text event and the rest starts the next; that second
    event is itself cut into two TCP writes `tcp_cut` bytes into its key text."""
    first, second = f"key: {esc(key[:cut], every)}", f"{esc(key[cut:], every, cut)} done"
    if wire == "openai":
        raw = transcript("openai_stream_text.sse")
        raw = raw.replace(b'"content":"Hello"', b'"content":"' + first.encode() + b'"')
        raw = raw.replace(b'"content":"! How can I"', b'"content":"' + second.encode() + b'"')
        raw = raw.replace(b'"content":" help you today?"', b'"content":""')
    elif wire == "anthropic":
        raw = transcript("anthropic_stream_text.sse")
        raw = raw.replace(b'"text":"Hello"', b'"text":"' + first.encode() + b'"')
        raw = raw.replace(b'"text":"! How can I help"', b'"text":"' + second.encode() + b'"')
        raw = raw.replace(b'"text":" you today?"', b'"text":""')
    else:
        raw = transcript("openai_responses_stream_text.sse")
        raw = raw.replace(b'"delta":"Hello"', b'"delta":"' + first.encode() + b'"')
        raw = raw.replace(b'"delta":"!"', b'"delta":"' + second.encode() + b'"')
        for word in (b" How", b" can", b" I", b" help", b" you", b" today", b"?"):
            raw = raw.replace(b'"delta":"' + word + b'"', b'"delta":""')
        raw = raw.replace(b"Hello! How can I help you today?", f"key: {esc(key)} done".encode())
    at = raw.index(second.encode()) + tcp_cut
    return Reply(writes=[raw[:at], raw[at:]], event_delay=0.02)


PATHS = ["chat/gpt", "chat/claude", "messages/claude", "messages/gpt", "responses/gpt", "embeddings/gpt"]
STREAMED = ["chat/gpt", "chat/claude", "messages/claude", "messages/gpt", "responses/gpt"]


@pytest.mark.parametrize("status", [400, 422, 401, 500])
def test_an_upstream_error_quoting_the_key_in_escapes_reaches_no_caller_and_no_record(gw, upstream, status):
    n = 0
    for path in PATHS:
        for stream in ([False, True] if path in STREAMED else [False]):
            upstream.push(error_reply("anthropic" if WIRE[path] == "anthropic" else "openai", status))
            seen = call(gw, path, stream)
            n += 1
            assert "ERROR:" in seen, (path, stream, seen)
            assert_no_key(f"the {path} error (stream={stream})", seen)
    assert not upstream.script
    assert_no_key("the records", records_text(gw.config_path, n))


def test_a_whole_answer_quoting_the_key_reaches_no_caller_and_no_record(gw, upstream):
    for path in PATHS:
        upstream.push(whole_reply(WIRE[path], path))
        seen = call(gw, path, False)
        assert "ERROR:" not in seen, (path, seen)
        assert_no_key(f"the {path} answer", seen)
        if path != "embeddings/gpt":
            assert text_of(seen) == "key: [redacted] done", (path, text_of(seen))
    assert_no_key("the records", records_text(gw.config_path, len(PATHS)))


def streamed_text(key: str, cut: int) -> str:
    """What a caller reads of `stream_reply`: a text event ending with fewer than HOLD_FROM of the key's
    first characters goes out at once (holding every word ending in "s" would cost each stream a decode),
    so those show before the mark; the rest of the key does not."""
    return f"key: {key[:cut] if cut < HOLD_FROM else ''}[redacted] done"


@pytest.mark.parametrize("cut", [1, 2, HOLD_FROM, 10, len(KEY) - 1])
def test_a_key_split_across_two_events_and_two_reads_reaches_no_caller_and_no_record(gw, upstream, cut):
    for path in STREAMED:
        upstream.push(stream_reply(WIRE[path], cut=cut))
        seen = call(gw, path, True)
        assert "ERROR:" not in seen, (path, seen)
        assert_no_key(f"the {path} stream", seen)
        assert text_of(seen) == streamed_text(KEY, cut), (path, text_of(seen))
    assert_no_key("the records", records_text(gw.config_path, len(STREAMED)))


@pytest.mark.parametrize("short", ["none", "x", "dummy"])
def test_a_placeholder_key_too_short_to_be_secret_leaves_answers_intact(make_gateway, upstream, monkeypatch, short):
    monkeypatch.setenv("TEST_UPSTREAM_KEY", short)
    gw = make_gateway(main=config(upstream.url))
    text = "none of them, x marks dummy"
    for path in STREAMED:
        wire = WIRE[path]
        first, second = "none of them, ", "x marks dummy"
        reply = stream_reply(wire, key=first + second, cut=len(first), every=10**6)
        reply.writes = [w.replace(b"key: ", b"").replace(b" done", b"") for w in reply.writes]
        upstream.push(reply)
        seen = call(gw, path, True)
        assert "ERROR:" not in seen, (path, seen)
        assert text_of(seen) == text, (path, seen)
        upstream.push(Reply(status=400, body=orjson.dumps(
            {"type": "error", "error": {"type": "invalid_request_error", "message": text}} if wire == "anthropic"
            else {"error": {"message": text, "type": "invalid_request_error", "param": None, "code": None}})))
        seen = call(gw, path, False)
        assert "ERROR:" in seen and text in seen, (path, seen)


def test_check_config_says_a_short_provider_key_is_unprotected_without_showing_it(tmp_path):
    cfg = write_config(tmp_path, config("http://127.0.0.1:9"))
    import os

    out = subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config", str(cfg)], capture_output=True,
                         text=True, timeout=60, cwd=ROOT, env={**os.environ, "TEST_UPSTREAM_KEY": "shortk3y"})
    assert out.returncode == 0, out.stderr
    both = out.stdout + out.stderr
    assert "shortk3y" not in both
    warned = [ln for ln in both.splitlines() if "warn" in ln.lower() and "unprotected" in ln]
    assert any("up" in ln.split() or "'up'" in ln or "providers.up" in ln for ln in warned), both
    assert any("anth" in ln for ln in warned), both
    long = subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config", str(cfg)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env={**os.environ, "TEST_UPSTREAM_KEY": KEY})
    assert long.returncode == 0 and "unprotected" not in long.stdout + long.stderr


def token_reply(wire: str, text: str, size: int = 3) -> Reply:
    """`text` the way a model streams it: `size` characters an event, each written with ensure_ascii
    escapes (as OpenAI's upstream writes non-ASCII text)."""
    tokens = [json.dumps(text[i:i + size])[1:-1].encode() for i in range(0, len(text), size)]
    if wire == "openai":
        raw, field, old = transcript("openai_stream_text.sse"), b'"content":"', [b"Hello", b"! How can I", b" help you today?"]
    elif wire == "anthropic":
        raw, field, old = transcript("anthropic_stream_text.sse"), b'"text":"', [b"Hello", b"! How can I help", b" you today?"]
    else:
        raw, field = transcript("openai_responses_stream_text.sse"), b'"delta":"'
        old = [b"Hello", b"!", b" How", b" can", b" I", b" help", b" you", b" today", b"?"]
        raw = raw.replace(b"Hello! How can I help you today?", json.dumps(text)[1:-1].encode())
    events = raw.split(b"\n\n")
    at = next(i for i, e in enumerate(events) if field + old[0] + b'"' in e)
    template = events[at]
    events[at:at + 1] = [template.replace(field + old[0] + b'"', field + t + b'"') for t in tokens]
    for word in old[1:]:
        events = [e.replace(field + word + b'"', field + b'"') for e in events]
    return Reply(writes=[b"\n\n".join(events)])


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_a_key_a_model_repeats_token_by_token_in_ensure_ascii_text_is_never_readable(gw, upstream, size):
    before, after = "Voilà la clé demandée : ", " — c'est tout, à bientôt."
    for path in STREAMED:
        for shift in range(size):  # every alignment of the key against the event cuts
            upstream.push(token_reply(WIRE[path], before[shift:] + KEY + after, size))
            seen = call(gw, path, True)
            assert "ERROR:" not in seen, (path, seen)
            assert_no_key(f"the {path} stream", seen)
            assert text_of(seen) in {before[shift:] + KEY[:i] + "[redacted]" + after for i in range(HOLD_FROM)}, (
                path, size, shift, text_of(seen))

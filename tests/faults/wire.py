"""What a well-formed answer looks like on the wire, shared by the fault, fuzz and security tests.

A caller must always get either a success in its API's shape or an error it can parse: OpenAI's
`{"error": {"message", "type", "param", "code"}}`, Anthropic's `{"type": "error", "error": {...}}`,
or, once a stream has started, valid SSE whose last event is the API's own error event or its end.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson

from tests.support.gateway import TEST_KEY

MSGS = [{"role": "user", "content": "Say hello"}]
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def openai_error(body: bytes) -> dict:
    doc = orjson.loads(body)
    err = doc["error"]
    assert isinstance(err["message"], str) and err["message"], doc
    assert isinstance(err["type"], str) and isinstance(err["code"], str), doc
    assert "param" in err, doc
    return err


def anthropic_error(body: bytes) -> dict:
    doc = orjson.loads(body)
    assert doc["type"] == "error", doc
    err = doc["error"]
    assert isinstance(err["type"], str) and isinstance(err["message"], str) and err["message"], doc
    return err


def error_shape(path: str, body: bytes) -> dict:
    """The error in the shape of the API at `path`."""
    return anthropic_error(body) if path.startswith("/v1/messages") else openai_error(body)


def sse_events(raw: bytes) -> list[tuple[str | None, bytes]]:
    """(event name, data) of each SSE event; fails on a line that is neither a field nor blank."""
    events = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split(b"\n"):
            field, sep, value = line.partition(b":")
            assert sep or not line, f"not an SSE line: {line!r}"
            value = value[1:] if value.startswith(b" ") else value
            if field == b"event":
                name = value.decode()
            elif field == b"data":
                data.append(value)
            else:
                assert field in (b"", b"id", b"retry"), f"unknown SSE field: {line!r}"
        events.append((name, b"\n".join(data)))
    return events


def openai_stream(raw: bytes) -> tuple[list[dict], str]:
    """The JSON chunks of an OpenAI chat stream and how it ended: "done" ([DONE] last) or "error"
    (an error chunk last). Every data line but [DONE] must be a JSON object."""
    chunks = []
    events = sse_events(raw)
    assert events, "an empty stream"
    for i, (_, data) in enumerate(events):
        if data == b"[DONE]":
            assert i == len(events) - 1, "[DONE] is the last event"
            break
        chunk = orjson.loads(data)
        assert isinstance(chunk, dict)
        chunks.append(chunk)
        if "error" in chunk:  # an upstream's own error chunk may be followed by [DONE]
            err = chunk["error"]
            assert isinstance(err["message"], str) and err["message"], chunk
            assert i >= len(events) - 2, "nothing but [DONE] follows an error event"
            return chunks, "error"
    else:
        raise AssertionError("the stream ended without [DONE] or an error event")
    return chunks, "done"


def records(path: Path, n: int | None = None, timeout: float = 10) -> list[dict]:
    """Request records in an audit file sink, waiting until at least `n` are there."""
    deadline = time.time() + timeout
    while True:
        lines = path.read_bytes().splitlines() if path.exists() else []
        recs = [r for r in map(orjson.loads, filter(None, lines)) if r.get("type") == "request"]
        if n is None or len(recs) >= n or time.time() > deadline:
            return recs
        time.sleep(0.05)


def by_request_id(recs: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in recs:
        counts[r["request_id"]] = counts.get(r["request_id"], 0) + 1
    return counts


def audit_verify(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", "audit", "verify", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)

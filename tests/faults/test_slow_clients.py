"""Slow and greedy clients cannot take the gateway from everyone else.

A client that sends its headers and then drips its body (one valid key, many connections) must not
hold the slots that finished requests need: it is counted as a body reader (a bound of its own), not
as in flight, and it is answered 408 in its API's shape once `body_timeout_s` has passed, with the
connection closed. One key cannot hold more than `max_in_flight_per_key` requests at once (reading
their body or in flight): the next gets 429 while other keys are served. Every refusal leaves a record
with its reason code.

File descriptors stay modest (a few dozen sockets): CI runners often have `ulimit -n` 1024.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import orjson
import pytest

from tests.support.fake_upstream import Reply
from tests.support.gateway import OTHER_KEY, TEST_KEY

MSGS = [{"role": "user", "content": "hello"}]
AUDIT = """
[audit]
flush_interval_ms = 2
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
"""
DECLARED_LENGTH = 100


class SlowBodies:
    """`n` raw connections that send full headers with `Content-Length: 100`, then one body byte every
    `drip_s` seconds from a background thread, until the server answers or the test ends."""

    def __init__(self, gw, n: int, key: str = TEST_KEY, path: str = "/v1/chat/completions", drip_s: float = 0.2):
        host, port = gw.url.removeprefix("http://").split(":")
        self.socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._drip_s = drip_s
        auth = f"x-api-key: {key}" if path == "/v1/messages" else f"Authorization: Bearer {key}"
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\nContent-Type: application/json\r\n"
                f"anthropic-version: 2023-06-01\r\nContent-Length: {DECLARED_LENGTH}\r\n\r\n{{").encode()
        for _ in range(n):
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(head)
            self.socks.append(s)
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        while not self._stop.wait(self._drip_s):
            for s in self.socks:
                try:
                    s.send(b" ")
                except OSError:  # answered and closed by the server
                    pass

    def answers(self, guard_s: float = 10.0) -> list[tuple[int, dict, bytes, bool]]:
        """Each connection's (status, headers, body, closed by the server) once it is answered."""
        return [read_answer(s, guard_s) for s in self.socks]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in self.socks:
            s.close()

    def __enter__(self) -> SlowBodies:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_answer(s: socket.socket, guard_s: float) -> tuple[int, dict, bytes, bool]:
    """Read one HTTP response; `closed` is whether the server then closed the connection (EOF)."""
    s.settimeout(guard_s)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"connection closed before a response: {buf!r}"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = s.recv(65536)
        assert chunk, "connection closed inside the response body"
        rest += chunk
    # aiohttp would otherwise linger 10 s reading the rest of the body before closing.
    s.settimeout(min(guard_s, 5.0))
    try:
        closed = s.recv(65536) == b""
    except ConnectionResetError:  # closed, and our drip thread wrote to it since: the peer's kernel resets
        closed = True
    except TimeoutError:
        closed = False
    return status, headers, rest[:length], closed


def wait_until(cond, guard_s: float = 10.0) -> None:
    deadline = time.monotonic() + guard_s
    while not cond():
        assert time.monotonic() < deadline, "condition not reached within the hang guard"
        time.sleep(0.02)


def reading(gw) -> int:
    return getattr(gw.state, "reading", 0)


def records(gw, pred, n: int, guard_s: float = 10.0) -> list[dict]:
    path = Path(gw.config_path).parent / "audit" / "records.jsonl"
    found: list[dict] = []

    def enough() -> bool:
        nonlocal found
        if not path.exists():
            return False
        lines = [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]
        found = [r for r in lines if r.get("type") == "request" and pred(r)]
        return len(found) >= n

    wait_until(enough, guard_s)
    return found


def client(gw, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0, timeout=20)


def test_slow_bodies_of_one_key_leave_the_in_flight_slots_to_other_clients(make_gateway):
    gw = make_gateway(server="max_in_flight = 8")
    with SlowBodies(gw, 32) as slow:
        # The gateway has seen every slow request's headers: reading their bodies (or, before the
        # fix, holding all 8 in-flight slots).
        wait_until(lambda: reading(gw) >= 32 or gw.state.in_flight >= 8)
        time.sleep(0.2)
        other = client(gw, OTHER_KEY)

        def ask(i: int) -> str:
            if i % 4 == 0:
                parts = other.chat.completions.create(model="demo", messages=MSGS, stream=True)
                return "".join(c.choices[0].delta.content or "" for c in parts if c.choices)
            return other.chat.completions.create(model="demo", messages=MSGS).choices[0].message.content

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(40)))
        assert all("hello" in a for a in answers)
        # The slow requests are still being read, not refused: they were never in flight.
        assert gw.state.in_flight == 0 and reading(gw) == 32
        for s in slow.socks:
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
            s.setblocking(True)
    wait_until(lambda: reading(gw) == 0)


def test_a_body_that_does_not_arrive_in_time_gets_408_in_the_callers_shape_and_the_connection_closes(make_gateway):
    gw = make_gateway(extra=AUDIT, server="body_timeout_s = 0.5\nmax_in_flight = 8")
    with SlowBodies(gw, 6) as openai_side, SlowBodies(gw, 3, path="/v1/messages") as anthropic_side:
        for status, headers, body, closed in openai_side.answers():
            assert status == 408 and closed, (status, body)
            assert headers["connection"].lower() == "close" and headers["x-request-id"]
            err = orjson.loads(body)["error"]
            assert err["code"] == "request_timeout" and err["type"] == "invalid_request_error" and err["message"]
        for status, _, body, closed in anthropic_side.answers():
            assert status == 408 and closed
            doc = orjson.loads(body)
            assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error"
    wait_until(lambda: reading(gw) == 0 and gw.state.in_flight == 0)
    # A request that sends its body in time is unaffected, on the same gateway.
    assert client(gw, TEST_KEY).chat.completions.create(model="demo", messages=MSGS).choices[0].message.content
    recs = records(gw, lambda r: r["status"] == 408, 9)
    assert {r["block_reason"] for r in recs} == {"request.body_timeout"}
    assert {r["key_id"] for r in recs} == {"test"}
    assert {r["route"] for r in recs} == {"chat", "messages"}


def test_one_key_cannot_hold_more_than_max_in_flight_per_key(make_gateway, upstream):
    gw = make_gateway(extra=AUDIT, server="max_in_flight_per_key = 2\nmax_in_flight = 8")
    mine, other = client(gw, TEST_KEY), client(gw, OTHER_KEY)
    # Two requests still sending their body hold the key's two slots.
    with SlowBodies(gw, 2):
        wait_until(lambda: reading(gw) == 2)
        with pytest.raises(openai.RateLimitError) as exc:
            mine.chat.completions.create(model="demo", messages=MSGS)
        assert exc.value.response.headers["retry-after"] == "1"
        assert exc.value.body["code"] == "key_in_flight_exceeded"
        assert other.chat.completions.create(model="demo", messages=MSGS).choices[0].message.content
    wait_until(lambda: reading(gw) == 0)
    # Freed when those requests end: the key is served again.
    assert mine.chat.completions.create(model="demo", messages=MSGS).choices[0].message.content
    # Two requests waiting for their upstream (in flight) hold them too.
    upstream.push(Reply(header_delay=1.0, body=b'{"choices": [], "usage": {}}'),
                  Reply(header_delay=1.0, body=b'{"choices": [], "usage": {}}'))
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(mine.chat.completions.create, model="gpt", messages=MSGS) for _ in range(2)]
        wait_until(lambda: gw.state.in_flight == 2)
        with pytest.raises(openai.RateLimitError):
            mine.chat.completions.create(model="demo", messages=MSGS)
        assert other.chat.completions.create(model="demo", messages=MSGS).choices[0].message.content
        for f in held:
            f.result()
    recs = records(gw, lambda r: r["status"] == 429, 2)
    assert {r["block_reason"] for r in recs} == {"gateway.key_in_flight"}
    assert {r["key_id"] for r in recs} == {"test"}


def test_past_max_body_readers_new_requests_get_a_fast_503_with_retry_after(make_gateway):
    gw = make_gateway(extra=AUDIT, server="max_body_readers = 4\nmax_in_flight = 8")
    with SlowBodies(gw, 4):
        wait_until(lambda: reading(gw) == 4)
        with SlowBodies(gw, 1, key=OTHER_KEY, path="/v1/messages") as late:
            [(status, headers, body, _)] = late.answers()
        assert status == 503 and headers["retry-after"] == "1"
        assert orjson.loads(body)["error"]["type"] == "overloaded_error"
    wait_until(lambda: reading(gw) == 0)
    assert client(gw, OTHER_KEY).chat.completions.create(model="demo", messages=MSGS).choices[0].message.content
    recs = records(gw, lambda r: r["status"] == 503, 1)
    assert {r["block_reason"] for r in recs} == {"gateway.body_readers_full"}


def test_the_open_dashboard_login_form_bounds_its_body_in_time_too(make_gateway, monkeypatch):
    monkeypatch.setenv("TEST_ADMIN_KEY", "admin-secret-0123456789")
    gw = make_gateway(extra='\n[admin]\nkey_env = "TEST_ADMIN_KEY"\n', server="body_timeout_s = 0.5")
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"POST /dashboard/login HTTP/1.1\r\nHost: {host}:{port}\r\n"
                  "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nkey=".encode())
        status, headers, _, closed = read_answer(s, 10.0)
    assert status == 408 and closed and headers["connection"].lower() == "close"


BIG = """
[providers.big]
type = "mock"
mode = "lorem"
chunks = 1000

[models.big]
targets = [{ provider = "big", model = "m" }]
"""


def test_a_client_that_stops_reading_its_stream_is_disconnected_after_send_timeout_s(make_gateway):
    gw = make_gateway(extra=BIG + AUDIT, server="send_timeout_s = 0.5")
    host, port = gw.url.removeprefix("http://").split(":")
    body = orjson.dumps({"model": "big", "messages": MSGS, "stream": True, "max_tokens": 1_000_000})
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a few MB of answer fill every buffer on the way
    s.settimeout(10)
    with s:
        s.connect((host, int(port)))
        s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TEST_KEY}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        wait_until(lambda: gw.state.in_flight == 1)
        # Never read: the gateway's writes block, and after send_timeout_s it lets go of the request.
        wait_until(lambda: gw.state.in_flight == 0, guard_s=20)
    [rec] = records(gw, lambda r: r["alias"] == "big", 1)
    assert rec["client_disconnected"] and "client.send_timeout" in {d["reason"] for d in rec["decisions"]}
    # A client that reads, however it paces itself, is not cut: the same stream read in full.
    with client(gw, TEST_KEY).chat.completions.create(model="big", messages=MSGS, stream=True, max_tokens=20_000) as st:
        assert sum(len(c.choices[0].delta.content or "") for c in st if c.choices) > 100_000

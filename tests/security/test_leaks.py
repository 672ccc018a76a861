"""What must never leave the gateway: provider secrets, the audit HMAC key and the admin key (in logs,
records, errors, /stats or /metrics); requests to anywhere but configured upstreams; unsanitised
request ids or header text in logs and records; unbounded metric label sets."""

from __future__ import annotations

import random
import socket

import httpx
import pytest
import orjson

from tests.faults.procs import LoggedGateway
from tests.faults.wire import AUTH, MSGS, error_shape, records
from tests.support.fake_upstream import FakeUpstream, Reply, transcript
from tests.support.gateway import UPSTREAM_SECRET, base_config, write_config

HMAC_SECRET = "audit-hmac-SECRET-7f3a9c"
ADMIN_SECRET = "admin-SECRET-0b1d2e3f4a"


def echo(status: int) -> Reply:
    """An upstream that quotes the gateway's credential back, as OpenAI's 401 does."""
    msg = f"Incorrect API key provided: {UPSTREAM_SECRET}. Bearer {UPSTREAM_SECRET}"
    return Reply(status=status, body=orjson.dumps({"error": {"message": msg, "type": "invalid_request_error"}}))


def raw_request(url: str, head: bytes, body: bytes = b"") -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head + b"\r\n\r\n" + body)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_secrets_never_reach_logs_records_errors_stats_or_metrics(tmp_path, upstream):
    main = base_config(upstream.url, server="first_byte_timeout_s = 0.5\nidle_timeout_s = 0.5") + f"""
[providers.dead]
type = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "TEST_UPSTREAM_KEY"

[models.dead]
targets = [{{ provider = "dead", model = "x" }}]
max_attempts = 1

[models.once]
targets = [{{ provider = "up", model = "gpt-4o-mini" }}]
max_attempts = 1

[admin]
key_env = "SEC_ADMIN_KEY"

[audit]
flush_interval_ms = 2
hmac_key_env = "SEC_HMAC_KEY"
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
[[audit.sinks]]
type = "stdout"
"""
    cfg = write_config(tmp_path, main)
    env = {"TEST_UPSTREAM_KEY": UPSTREAM_SECRET, "SEC_HMAC_KEY": HMAC_SECRET, "SEC_ADMIN_KEY": ADMIN_SECRET,
           "GATEWAY_LOG_LEVEL": "DEBUG"}
    gw = LoggedGateway(cfg, tmp_path / "gateway.log", env=env)
    bodies: list[bytes] = []
    try:
        stream_error = f'data: {{"error": {{"message": "bad key {UPSTREAM_SECRET}"}}}}\n\n'.encode()
        faults = [(echo(401), False), (echo(400), False), (echo(422), False), (echo(429), False), (echo(500), False),
                  (echo(400), True), (Reply(hang=True), False), (Reply(body=b"not json"), False),
                  (Reply(sse=transcript("openai_stream_text.sse"), reset_after=2), True), (Reply(sse=stream_error), True)]
        upstream.push(*(reply for reply, _ in faults))
        for stream, model in [(stream, "once") for _, stream in faults] + [(False, "dead")]:
            r = httpx.post(gw.url + "/v1/chat/completions", headers=AUTH, timeout=15,
                           json={"model": model, "messages": MSGS, "stream": stream})
            assert r.status_code != 500
            bodies.append(r.content + repr(r.headers).encode())
        assert not upstream.script, "every fault was served"
        for path in ("/stats", "/metrics"):
            r = httpx.get(gw.url + path, headers={"x-admin-key": ADMIN_SECRET})
            assert r.status_code == 200
            bodies.append(r.content)
        bodies.append(httpx.get(gw.url + "/stats").content)
        recs = records(cfg.parent / "audit" / "records.jsonl", 11)
        assert len(recs) == 11
    finally:
        assert gw.stop() == 0
    places = {"log and stdout": gw.output().encode(),
              "audit file": (cfg.parent / "audit" / "records.jsonl").read_bytes(),
              "responses": b"\n".join(bodies)}
    for secret in (UPSTREAM_SECRET, HMAC_SECRET, ADMIN_SECRET):
        for where, text in places.items():
            assert secret.encode() not in text, f"{secret} found in {where}: " + repr([ln[:300] for ln in text.split(b"\n") if secret.encode() in ln])
            assert secret[-12:].encode() not in text, f"part of {secret} found in {where}"


def test_only_configured_upstreams_are_ever_contacted(make_gateway, upstream, servers):
    evil = FakeUpstream()
    evil.url = servers.serve(evil.app())
    try:
        gw = make_gateway()
        evil_host = evil.url.removeprefix("http://")
        attempts = [
            ({"model": evil.url + "/v1"}, {}),
            ({"model": f"up/{evil.url}"}, {}),
            ({"model": "gpt", "base_url": evil.url, "api_base": evil.url + "/v1", "url": evil.url}, {}),
            ({"model": "gpt"}, {"X-Forwarded-Host": evil_host, "Forwarded": f"host={evil_host}",
                                "x-gateway-upstream": evil.url, "x-gateway-base-url": evil.url,
                                "X-Original-URL": evil.url, "X-Rewrite-URL": evil.url}),
            ({"model": "gpt"}, {"Host": evil_host}),
        ]
        for body, headers in attempts:
            r = httpx.post(gw.v1 + "/chat/completions", json={"messages": MSGS, **body},
                           headers={**AUTH, **headers}, timeout=10)
            assert r.status_code in (200, 404), r.content
            if r.status_code == 404:
                error_shape("/v1/chat/completions", r.content)
        assert evil.requests == [], "a client-controlled URL was contacted"
        assert {s.path for s in upstream.requests} == {"/v1/chat/completions"}
    finally:
        servers.stop_app(evil.url)


def test_request_ids_and_header_text_are_sanitised_before_logs_and_records(tmp_path, upstream):
    main = base_config(upstream.url) + """
[audit]
flush_interval_ms = 2
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
"""
    cfg = write_config(tmp_path, main)
    gw = LoggedGateway(cfg, tmp_path / "gateway.log", env={"GATEWAY_LOG_LEVEL": "DEBUG"})
    body = orjson.dumps({"model": "nope-\x1b[31m", "messages": MSGS})
    try:
        hostile = [b"x-request-id: id\x1b[2J\x1b[31mred", b"x-request-id: a\x07b\x00c", b"x-gateway-tags: ok,\x1b[31mred",
                   b"x-request-id: " + b"A" * 300, b"x-request-id: \xe9\xff\xfe", b"traceparent: 00-\x1b[0m-x"]
        answers = []
        for line in hostile:
            head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    b"Authorization: " + AUTH["Authorization"].encode() + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n" + line)
            answers.append(raw_request(gw.url, head, body))
        served = [a for a in answers if a.startswith(b"HTTP/1.1 404")]
        assert served, answers
        for a in served:
            rid = [h for h in a.split(b"\r\n") if h.lower().startswith(b"x-request-id:")][0]
            assert rid.split(b":", 1)[1].strip().startswith(b"req_")
        recs = records(cfg.parent / "audit" / "records.jsonl", len(served))
    finally:
        gw.stop()
    log = gw.output()
    for text, where in ((log, "log"), ((cfg.parent / "audit" / "records.jsonl").read_text(), "records")):
        assert "\x1b" not in text and "\x07" not in text and "\x00" not in text, where
    for rec in recs:
        assert rec["request_id"].startswith("req_") and all(t.isprintable() for t in rec["tags"])


def test_metric_labels_stay_bounded_under_many_distinct_models_keys_and_tags(make_gateway):
    gw = make_gateway()

    def series() -> int:
        text = httpx.get(gw.url + "/metrics").text
        return sum(1 for line in text.splitlines() if line and not line.startswith("#"))

    # One refusal of each kind first (unknown model; unknown key, with a tag and a request id): the
    # bounded series they create ("-" labels, the error code) exist before counting.
    httpx.post(gw.v1 + "/chat/completions", json={"model": "nope-0", "messages": MSGS}, headers=AUTH)
    httpx.post(gw.v1 + "/chat/completions", json={"model": "nope-00", "messages": MSGS},
               headers={"Authorization": "Bearer sk-random-0", "x-gateway-tags": "t0", "x-request-id": "rid-0"})
    before = series()
    for i in range(1, 80):
        httpx.post(gw.v1 + "/chat/completions", json={"model": f"nope-{i}-{'x' * i}", "messages": MSGS},
                   headers={"Authorization": f"Bearer sk-random-{i}", "x-gateway-tags": f"t{i}",
                            "x-request-id": f"rid-{i}"})
        httpx.post(gw.v1 + "/chat/completions", json={"model": f"nope-{i}", "messages": MSGS},
                   headers={**AUTH, "x-gateway-tags": f"t{i}", "x-request-id": f"rid-{i}"})
    text = httpx.get(gw.url + "/metrics").text
    assert series() - before <= 10, "each new model name, key, tag or request id must not make a new series"
    assert "nope-" not in text and "rid-" not in text and "sk-random" not in text and 't1"' not in text


FUZZ_KEY = "sk-fz/9+Q=abcDEF_0123456789xyz"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzz_a_provider_key_echoed_in_random_escapes_and_cuts_is_never_readable(make_gateway, upstream, monkeypatch,
                                                                                 seed):
    """Differential fuzz over the caller's paths: the key, each character randomly written as itself, a
    \\u escape (either hex case) or `\\/`, in an error (also percent-encoded), a whole answer or a stream
    cut at a random point into two events and at another into two TCP writes, must never be readable
    by the caller or in the payload records."""
    from tests.security import test_key_scrub as ks

    monkeypatch.setenv("TEST_UPSTREAM_KEY", FUZZ_KEY)
    gw = make_gateway(main=ks.config(upstream.url))
    rng = random.Random(seed)
    rounds = 14
    for _ in range(rounds):
        path = rng.choice(ks.STREAMED)
        wire = ks.WIRE[path]
        kind = rng.choice(["error", "whole", "stream"])
        if kind == "error":
            upstream.push(ks.error_reply("anthropic" if wire == "anthropic" else "openai", rng.choice([400, 422]),
                                         key=FUZZ_KEY))
        elif kind == "whole":
            upstream.push(ks.whole_reply(wire, path, key=FUZZ_KEY))
        else:
            cut = rng.choice([1, 2, rng.randrange(1, len(FUZZ_KEY))])
            reply = ks.stream_reply(wire, key=FUZZ_KEY, cut=cut, tcp_cut=rng.randrange(0, 8),
                                    every=rng.choice([1, 2, 3, 5, 10 ** 6]))
            upstream.push(reply)
        seen = ks.call(gw, path, kind == "stream")
        ks.assert_no_key(f"{path} {kind} (seed {seed})", seen, FUZZ_KEY)
        if kind != "error":
            want = ks.streamed_text(FUZZ_KEY, cut) if kind == "stream" else "key: [redacted] done"
            assert ks.text_of(seen) == want, (path, kind, seed, ks.text_of(seen))
    ks.assert_no_key("the records", ks.records_text(gw.config_path, rounds), FUZZ_KEY)

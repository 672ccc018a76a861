"""Egress: the gateway reaches providers through a real CONNECT proxy (started here, counting its
tunnels), verifies TLS upstreams against a test CA (trustme), and presents client certificates, all
through the official openai SDK over real sockets."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from pathlib import Path
from urllib.parse import quote

import openai
import orjson
import pytest
import trustme

from tests.support.connect_proxy import ConnectProxy
from tests.support.fake_upstream import FakeUpstream, Reply, transcript
from tests.support.gateway import TEST_KEY, base_config, start_gateway

MSGS = [{"role": "user", "content": "Say hello"}]
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
PROXY_PASSWORD = "s3cret-P@ss:w0rd"  # characters that must be percent-encoded in the URL
AUDIT = """
[audit]
flush_interval_ms = 2
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
"""


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch):
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def pems(ca, tmp_path_factory):
    """The CA the upstreams' certificates come from, another CA, and a client certificate from the first."""
    d = tmp_path_factory.mktemp("pki")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(d / "other-ca.pem"))
    client = ca.issue_cert("gateway-client@example.com")
    client.cert_chain_pems[0].write_to_path(str(d / "client.pem"))
    client.private_key_pem.write_to_path(str(d / "client.key"))
    other = ca.issue_cert("someone-else@example.com")
    other.private_key_pem.write_to_path(str(d / "other.key"))
    return d


def _serve_tls(servers, ca, *, require_client_cert: bool) -> FakeUpstream:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(ctx)
    fake = FakeUpstream()
    fake.url = servers.serve(fake.app(), ssl_context=ctx)
    return fake


@pytest.fixture
def tls_upstream(servers, ca):
    fake = _serve_tls(servers, ca, require_client_cert=False)
    yield fake
    servers.stop_app(fake.url)


@pytest.fixture
def mtls_upstream(servers, ca):
    fake = _serve_tls(servers, ca, require_client_cert=True)
    yield fake
    servers.stop_app(fake.url)


def _proxy(servers, **auth):
    p = ConnectProxy(**auth)
    servers.run(p.start())
    return p


@pytest.fixture
def proxy(servers):
    p = _proxy(servers)
    yield p
    servers.run(p.stop())


def config(upstream_url: str, up_lines: str = "", extra: str = "") -> str:
    """The test config with `up_lines` added to `[providers.up]`."""
    anchor = 'api_key_env = "TEST_UPSTREAM_KEY"\n'
    text = base_config(upstream_url, extra)
    assert anchor in text
    return text.replace(anchor, anchor + up_lines, 1)


@pytest.fixture
def gw_factory(servers, tmp_path):
    started = []

    def make(main: str):
        gw = start_gateway(servers, tmp_path / f"gw{len(started)}", main)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        servers.stop_app(gw.url)


def client(gw) -> openai.OpenAI:
    # The SDK's own client ignores the proxy variables: they are set here for the gateway's egress.
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0,
                         http_client=openai.DefaultHttpxClient(trust_env=False))


def records(gw, n: int, timeout: float = 10) -> list[dict]:
    path = Path(gw.config_path).parent / "audit" / "records.jsonl"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            reqs = [r for r in (orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip())
                    if r.get("type") == "request"]
            if len(reqs) >= n:
                return reqs
        time.sleep(0.05)
    raise AssertionError(f"expected {n} records in {path}")


def test_https_proxy_env_tunnels_and_verifies_the_custom_ca(gw_factory, tls_upstream, proxy, pems, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    gw = gw_factory(config(tls_upstream.url, f'ca_bundle = "{pems / "ca.pem"}"\n'))
    c = client(gw)
    out = c.chat.completions.create(model="gpt", messages=MSGS)
    assert out.choices[0].message.content
    text = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
        model="gpt", messages=MSGS, stream=True) if ch.choices)
    assert text
    port = tls_upstream.url.rsplit(":", 1)[1]
    # Both requests went through the proxy, on one tunnel kept alive between them.
    assert proxy.tunnels == [f"127.0.0.1:{port}"]
    assert len(tls_upstream.requests) == 2 and tls_upstream.requests[1].body["stream"] is True


def test_lower_case_https_proxy_is_honoured(gw_factory, tls_upstream, proxy, pems, monkeypatch):
    monkeypatch.setenv("https_proxy", proxy.url)
    gw = gw_factory(config(tls_upstream.url, f'ca_bundle = "{pems / "ca.pem"}"\n'))
    client(gw).chat.completions.create(model="gpt", messages=MSGS)
    assert len(proxy.tunnels) == 1


def test_no_proxy_goes_direct(gw_factory, tls_upstream, proxy, pems, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
    gw = gw_factory(config(tls_upstream.url, f'ca_bundle = "{pems / "ca.pem"}"\n'))
    client(gw).chat.completions.create(model="gpt", messages=MSGS)
    assert proxy.tunnels == [] and proxy.auth_seen == []
    assert len(tls_upstream.requests) == 1


def test_provider_proxy_overrides_the_environment(gw_factory, servers, tls_upstream, proxy, pems, monkeypatch):
    env_proxy = _proxy(servers)
    try:
        monkeypatch.setenv("HTTPS_PROXY", env_proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the environment's rule; the provider's proxy still applies
        gw = gw_factory(config(tls_upstream.url, f'ca_bundle = "{pems / "ca.pem"}"\nproxy = "{proxy.url}"\n'))
        client(gw).chat.completions.create(model="gpt", messages=MSGS)
        assert len(proxy.tunnels) == 1 and env_proxy.tunnels == []
        # proxy = "" turns proxies off for the provider, whatever the environment says.
        monkeypatch.delenv("NO_PROXY")
        gw2 = gw_factory(config(tls_upstream.url, f'ca_bundle = "{pems / "ca.pem"}"\nproxy = ""\n'))
        client(gw2).chat.completions.create(model="gpt", messages=MSGS)
        assert env_proxy.tunnels == [] and env_proxy.auth_seen == [] and len(proxy.tunnels) == 1
        assert len(tls_upstream.requests) == 2
    finally:
        servers.run(env_proxy.stop())


def test_http_proxy_env_forwards_a_plain_http_upstream(gw_factory, upstream, proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    gw = gw_factory(config(upstream.url))
    client(gw).chat.completions.create(model="gpt", messages=MSGS)
    assert proxy.forwarded == [f"{upstream.url}/v1/chat/completions"] and proxy.tunnels == []
    assert len(upstream.requests) == 1


def _all_logs_and_records(gw, caplog) -> str:
    audit = Path(gw.config_path).parent / "audit" / "records.jsonl"
    return caplog.text + (audit.read_text() if audit.exists() else "")


def test_proxy_auth_works_and_the_password_is_never_shown(gw_factory, servers, tls_upstream, pems, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    p = _proxy(servers, user="svc-gw", password=PROXY_PASSWORD)
    try:
        good = f"http://svc-gw:{quote(PROXY_PASSWORD, safe='')}@{p.url.removeprefix('http://')}"
        monkeypatch.setenv("HTTPS_PROXY", good)
        gw = gw_factory(config(tls_upstream.url, f'ca_bundle = "{pems / "ca.pem"}"\n', extra=AUDIT))
        client(gw).chat.completions.create(model="gpt", messages=MSGS)
        assert len(p.tunnels) == 1 and p.refused == 0

        bad = f"http://svc-gw:{quote('wrong-' + PROXY_PASSWORD, safe='')}@{p.url.removeprefix('http://')}"
        monkeypatch.setenv("HTTPS_PROXY", bad)
        gw2 = gw_factory(config(tls_upstream.url, f'ca_bundle = "{pems / "ca.pem"}"\n', extra=AUDIT))
        with pytest.raises(openai.APIStatusError) as exc:
            client(gw2).chat.completions.create(model="gpt", messages=MSGS)
        assert exc.value.status_code == 502
        msg = exc.value.body["message"]
        assert "407" in msg and p.url.removeprefix("http://") in msg, msg
        records(gw, 1)
        records(gw2, 1)
        shown = msg + str(exc.value.body) + _all_logs_and_records(gw, caplog) + _all_logs_and_records(gw2, caplog)
        for secret in (PROXY_PASSWORD, quote(PROXY_PASSWORD, safe=""), "svc-gw:", "Basic "):
            assert secret not in shown
        assert len(tls_upstream.requests) == 1
    finally:
        servers.run(p.stop())


def test_unreachable_proxy_is_a_502_naming_it_and_fallbacks_still_work(gw_factory, servers, tls_upstream, pems,
                                                                      monkeypatch):
    dead = _proxy(servers)
    servers.run(dead.stop())  # its port is closed now
    host_port = dead.url.removeprefix("http://")
    extra = """
        [models.tls]
        targets = [{ provider = "up", model = "gpt-4o-mini" }]
        fallbacks = ["demo"]
        """
    gw = gw_factory(config(tls_upstream.url, f'ca_bundle = "{pems / "ca.pem"}"\nproxy = "{dead.url}"\n', extra=extra))
    with pytest.raises(openai.APIStatusError) as exc:
        client(gw).chat.completions.create(model="gpt", messages=MSGS)
    assert exc.value.status_code == 502
    assert f"could not reach the proxy at {host_port}" in exc.value.body["message"]
    assert client(gw).chat.completions.create(model="tls", messages=MSGS).choices[0].message.content
    assert tls_upstream.requests == []


def test_wrong_ca_is_a_clear_502_and_fallbacks_still_work(gw_factory, tls_upstream, proxy, pems, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    extra = """
        [models.tls]
        targets = [{ provider = "up", model = "gpt-4o-mini" }]
        fallbacks = ["demo"]
        """
    gw = gw_factory(config(tls_upstream.url, f'ca_bundle = "{pems / "other-ca.pem"}"\n', extra=extra))
    with pytest.raises(openai.APIStatusError) as exc:
        client(gw).chat.completions.create(model="gpt", messages=MSGS)
    assert exc.value.status_code == 502
    msg = exc.value.body["message"]
    assert "TLS verification of the upstream 127.0.0.1 failed" in msg and "certificate" in msg, msg
    assert tls_upstream.requests == []
    out = client(gw).chat.completions.create(model="tls", messages=MSGS)  # falls back to the mock
    assert out.choices[0].message.content
    assert tls_upstream.requests == []


def test_system_trust_store_refuses_the_test_ca_without_ca_bundle(gw_factory, tls_upstream):
    gw = gw_factory(config(tls_upstream.url))
    with pytest.raises(openai.APIStatusError) as exc:
        client(gw).chat.completions.create(model="gpt", messages=MSGS)
    assert exc.value.status_code == 502 and "TLS verification" in exc.value.body["message"]


def test_mtls_through_the_proxy_with_and_without_a_client_certificate(gw_factory, mtls_upstream, proxy, pems, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    cert_lines = (f'ca_bundle = "{pems / "ca.pem"}"\nclient_cert = "{pems / "client.pem"}"\n'
                  f'client_key = "{pems / "client.key"}"\n')
    gw = gw_factory(config(mtls_upstream.url, cert_lines))
    out = client(gw).chat.completions.create(model="gpt", messages=MSGS)
    assert out.choices[0].message.content and len(mtls_upstream.requests) == 1

    gw2 = gw_factory(config(mtls_upstream.url, f'ca_bundle = "{pems / "ca.pem"}"\n'))
    with pytest.raises(openai.APIStatusError) as exc:
        client(gw2).chat.completions.create(model="gpt", messages=MSGS)
    assert exc.value.status_code == 502
    msg = exc.value.body["message"]
    assert "TLS" in msg and "client certificate" in msg, msg
    assert len(mtls_upstream.requests) == 1
    # The provider with the certificate still works: its connections are its own.
    client(gw).chat.completions.create(model="gpt", messages=MSGS)
    assert len(mtls_upstream.requests) == 2


def test_stream_through_the_tunnel_and_disconnect_cancels_the_upstream(gw_factory, servers, tls_upstream, proxy, pems,
                                                                       monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    gw = gw_factory(config(tls_upstream.url, f'ca_bundle = "{pems / "ca.pem"}"\n'))
    tls_upstream.push(Reply(sse=transcript("openai_stream_text.sse"), event_delay=0.01))
    pieces = [ch.choices[0].delta.content for ch in client(gw).chat.completions.create(
        model="gpt", messages=MSGS, stream=True) if ch.choices and ch.choices[0].delta.content]
    assert len(pieces) > 1

    tls_upstream.push(Reply(sse=transcript("openai_stream_text.sse"), stall_after=2))
    stream = client(gw).chat.completions.create(model="gpt", messages=MSGS, stream=True)
    next(iter(stream))
    stream.close()
    servers.run(asyncio.wait_for(tls_upstream.abandoned_event.wait(), 5))
    assert tls_upstream.abandoned == 1
    assert len(proxy.tunnels) >= 1
    for _ in range(50):
        if gw.state.in_flight == 0:
            break
        servers.run(asyncio.sleep(0.05))
    assert gw.state.in_flight == 0

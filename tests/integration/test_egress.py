"""Egress over real sockets: the openai SDK calls the gateway, whose provider connections go through a
real CONNECT proxy (tests/support/connect_proxy.py, counting tunnels) to a TLS fake upstream whose
certificate comes from a test CA; HTTPS_PROXY and NO_PROXY from the environment, a per-provider
proxy, a CA bundle, a wrong CA (a clear 502), and an upstream that requires a client certificate."""

from __future__ import annotations

import base64
import ssl

import httpx
import openai
import pytest

from gateway.config.loader import load_config
from gateway.config.validate import ConfigError
from gateway.http.app import build_app
from tests.support.certs import TestCA
from tests.support.connect_proxy import ConnectProxy
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import TEST_KEY, base_config, write_config

MSGS = [{"role": "user", "content": "Say hello"}]
TEXT = "Hello! How can I help you today?"
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY",
              "all_proxy")


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca, other, client_ca = TestCA(d, "upstream CA"), TestCA(d, "some other CA"), TestCA(d, "client CA")
    return {"ca": ca, "other": other, "server": ca.issue("upstream", server=True),
            "client_ca": client_ca, "client": client_ca.issue("gateway-client", server=False)}


def server_ctx(pki, *, require_client: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki["server"].cert)
    if require_client:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki["client_ca"].pem)
    return ctx


@pytest.fixture
def tls_upstream(servers, pki):
    fake = FakeUpstream()
    fake.url = servers.serve(fake.app(), ssl_context=server_ctx(pki))
    yield fake
    servers.stop_app(fake.url)


@pytest.fixture
def proxy(servers):
    p = ConnectProxy()
    servers.run(p.start())
    yield p
    servers.run(p.stop())


def provider(name: str, url: str, **settings: str) -> str:
    lines = "".join(f'{k} = "{v}"\n' for k, v in settings.items())
    return f"""
[providers.{name}]
type = "openai"
base_url = "{url}/v1"
{lines}
[models.via-{name}]
targets = [{{ provider = "{name}", model = "m" }}]
max_attempts = 1
"""


def ask(gw, model: str, stream: bool = False) -> str:
    # The SDK itself must not use the test's proxy variables: only the gateway's egress is under test.
    c = openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0, http_client=httpx.Client(trust_env=False))
    if stream:
        return "".join(ch.choices[0].delta.content or "" for ch in
                       c.chat.completions.create(model=model, messages=MSGS, stream=True) if ch.choices)
    return c.chat.completions.create(model=model, messages=MSGS).choices[0].message.content


def origin(url: str) -> str:
    return url.split("://", 1)[1]


def test_per_provider_proxy_and_ca_bundle_reach_a_tls_upstream_through_one_pooled_tunnel(
        make_gateway, tls_upstream, proxy, pki):
    gw = make_gateway(extra=provider("corp", tls_upstream.url, proxy=proxy.url, ca_bundle=str(pki["ca"].pem)))
    assert ask(gw, "via-corp") == TEXT and ask(gw, "via-corp", stream=True) == TEXT and ask(gw, "via-corp") == TEXT
    assert len(tls_upstream.requests) == 3
    assert proxy.tunnels == {origin(tls_upstream.url): 1}  # a keep-alive connection: one tunnel, reused


def test_https_proxy_from_the_environment_and_no_proxy(make_gateway, tls_upstream, proxy, pki, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    gw = make_gateway(extra=provider("envp", tls_upstream.url, ca_bundle=str(pki["ca"].pem)))
    assert ask(gw, "via-envp", stream=True) == TEXT
    assert proxy.tunnels[origin(tls_upstream.url)] == 1
    monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.1")
    direct = make_gateway(extra=provider("envp", tls_upstream.url, ca_bundle=str(pki["ca"].pem)))
    assert ask(direct, "via-envp") == TEXT
    assert proxy.tunnels[origin(tls_upstream.url)] == 1, "NO_PROXY: connected directly"
    assert len(tls_upstream.requests) == 2


def test_an_empty_proxy_setting_overrides_the_environment(make_gateway, tls_upstream, proxy, pki, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    gw = make_gateway(extra=provider("nop", tls_upstream.url, proxy="", ca_bundle=str(pki["ca"].pem)))
    assert ask(gw, "via-nop") == TEXT and not proxy.tunnels


def test_plain_http_upstream_through_the_proxy(make_gateway, upstream, proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    gw = make_gateway(extra=provider("plain", upstream.url))
    assert ask(gw, "via-plain") == TEXT
    assert proxy.tunnels[origin(upstream.url)] == 1


def test_a_wrong_ca_is_a_clear_502(make_gateway, tls_upstream, proxy, pki):
    gw = make_gateway(extra=provider("wrong", tls_upstream.url, proxy=proxy.url, ca_bundle=str(pki["other"].pem)))
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as exc:
            ask(gw, "via-wrong", stream=stream)
        assert exc.value.status_code == 502
        message = exc.value.body["message"]
        assert "TLS certificate is not trusted" in message and "ca_bundle" in message, message
        assert exc.value.body["code"] == "upstream_unreachable"
    assert not tls_upstream.requests
    # and the system trust store does not know the test CA either
    system = make_gateway(extra=provider("system", tls_upstream.url))
    with pytest.raises(openai.APIStatusError) as exc:
        ask(system, "via-system")
    assert exc.value.status_code == 502 and "not trusted" in exc.value.body["message"]


def test_mtls_required_by_the_upstream_works_with_the_client_certificate(make_gateway, servers, proxy, pki):
    fake = FakeUpstream()
    fake.url = servers.serve(fake.app(), ssl_context=server_ctx(pki, require_client=True))
    try:
        gw = make_gateway(extra=provider("mtls", fake.url, proxy=proxy.url, ca_bundle=str(pki["ca"].pem),
                                         client_cert=str(pki["client"].cert))
                          + provider("split", fake.url, ca_bundle=str(pki["ca"].pem),
                                     client_cert=str(pki["client"].cert), client_key=str(pki["client"].key))
                          + provider("nocert", fake.url, ca_bundle=str(pki["ca"].pem)))
        assert ask(gw, "via-mtls") == TEXT and ask(gw, "via-mtls", stream=True) == TEXT
        assert ask(gw, "via-split") == TEXT
        assert proxy.tunnels[origin(fake.url)] == 1
        assert len(fake.requests) == 3
        with pytest.raises(openai.APIStatusError) as exc:
            ask(gw, "via-nocert")
        assert exc.value.status_code == 502
        assert len(fake.requests) == 3, "without a client certificate the upstream never sees the request"
    finally:
        servers.stop_app(fake.url)


def test_proxy_credentials_and_a_refused_tunnel(make_gateway, servers, upstream):
    p = ConnectProxy(require_auth="Basic " + base64.b64encode(b"alice:s3cret").decode())
    servers.run(p.start())
    try:
        host = origin(p.url)
        gw = make_gateway(extra=provider("authed", upstream.url, proxy=f"http://alice:s3cret@{host}")
                          + provider("anon", upstream.url, proxy=f"http://{host}"))
        assert ask(gw, "via-authed") == TEXT and p.tunnels[origin(upstream.url)] == 1
        with pytest.raises(openai.APIStatusError) as exc:
            ask(gw, "via-anon")
        assert exc.value.status_code == 502 and "HTTP 407" in exc.value.body["message"]
    finally:
        servers.run(p.stop())


@pytest.mark.parametrize(("setting", "key"), [
    ('ca_bundle = "/nonexistent/ca.pem"', "providers.bad.ca_bundle"),
    ('client_cert = "/nonexistent/client.pem"', "providers.bad.client_cert"),
    ('client_key = "/nonexistent/client.key"', "providers.bad.client_key"),
    ('proxy = "https://proxy.example:443"', "providers.bad.proxy"),
])
def test_bad_egress_settings_fail_at_load_with_the_key(tmp_path, setting, key):
    main = base_config("http://127.0.0.1:9", extra=f"""
[providers.bad]
type = "openai"
base_url = "https://api.example.com/v1"
{setting}
""")
    with pytest.raises(ConfigError) as err:
        build_app(load_config(str(write_config(tmp_path, main))))
    assert err.value.key == key

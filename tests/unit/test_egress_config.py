"""Egress settings are checked when the config loads: a bad proxy URL, an unreadable CA bundle or a
client key that does not match its certificate fails with the file, the key and what was expected,
and a proxy's credentials never appear in the message. Also the pure pieces: which proxy an origin
gets (environment, NO_PROXY, a provider's own), and the request heads it sends."""

from __future__ import annotations

import textwrap

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
import yarl

from gateway.config.loader import load_config
from gateway.config.validate import ConfigError
from gateway.providers.egress import Egress
from gateway.runtime import Services, compile_runtime
from tests.support.gateway import UPSTREAM_SECRET

PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def env(monkeypatch):
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEST_UPSTREAM_KEY", UPSTREAM_SECRET)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    one, two = ca.issue_cert("a@example.com"), ca.issue_cert("b@example.com")
    one.cert_chain_pems[0].write_to_path(str(d / "client.pem"))
    one.private_key_pem.write_to_path(str(d / "client.key"))
    two.private_key_pem.write_to_path(str(d / "other.key"))
    (d / "garbage.pem").write_text("not a certificate\n")
    key = serialization.load_pem_private_key(one.private_key_pem.bytes(), password=None)
    (d / "encrypted.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.BestAvailableEncryption(b"pw")))
    return d


def compile_with(tmp_path, up_lines: str) -> None:
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "keys.toml").write_text("")
    (tmp_path / "gateway.toml").write_text(textwrap.dedent("""
        policies = ["policies/*.toml"]
        [providers.up]
        type = "openai"
        base_url = "https://api.example.com/v1"
        api_key_env = "TEST_UPSTREAM_KEY"
        """) + textwrap.dedent(up_lines) + textwrap.dedent("""
        [models.gpt]
        targets = [{ provider = "up", model = "gpt-4o-mini" }]
        """))
    compile_runtime(load_config(str(tmp_path / "gateway.toml")), Services())


def refused(tmp_path, up_lines: str) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        compile_with(tmp_path, up_lines)
    assert exc.value.file.endswith("gateway.toml")
    return exc.value


def test_good_settings_compile(tmp_path, pki):
    compile_with(tmp_path, f"""
        proxy = "http://user:pw@proxy.internal:3128"
        ca_bundle = "{pki / 'ca.pem'}"
        client_cert = "{pki / 'client.pem'}"
        client_key = "{pki / 'client.key'}"
        """)


def test_relative_paths_are_read_from_the_config_folder(tmp_path, pki):
    (tmp_path / "ca.pem").write_bytes((pki / "ca.pem").read_bytes())
    compile_with(tmp_path, 'ca_bundle = "ca.pem"\n')


def test_missing_ca_bundle(tmp_path):
    err = refused(tmp_path, 'ca_bundle = "nope/ca.pem"\n')
    assert err.key == "providers.up.ca_bundle"
    assert "readable PEM file of CA certificates" in err.expected and "does not exist" in err.expected


def test_ca_bundle_without_certificates(tmp_path, pki):
    err = refused(tmp_path, f'ca_bundle = "{pki / "garbage.pem"}"\n')
    assert err.key == "providers.up.ca_bundle" and "PEM" in err.expected


def test_client_key_not_matching_its_certificate(tmp_path, pki):
    err = refused(tmp_path, f'client_cert = "{pki / "client.pem"}"\nclient_key = "{pki / "other.key"}"\n')
    assert err.key == "providers.up.client_cert"
    assert "matching" in err.expected and "KEY_VALUES_MISMATCH" in err.expected


def test_encrypted_client_key(tmp_path, pki):
    err = refused(tmp_path, f'client_cert = "{pki / "client.pem"}"\nclient_key = "{pki / "encrypted.key"}"\n')
    assert err.key == "providers.up.client_cert" and "encrypted" in err.expected


def test_client_cert_without_key(tmp_path, pki):
    err = refused(tmp_path, f'client_cert = "{pki / "client.pem"}"\n')
    assert err.key == "providers.up.client_key" and "together" in err.expected


def test_missing_client_key_file(tmp_path, pki):
    err = refused(tmp_path, f'client_cert = "{pki / "client.pem"}"\nclient_key = "{pki / "none.key"}"\n')
    assert err.key == "providers.up.client_key" and "does not exist" in err.expected


@pytest.mark.parametrize("url, why", [
    ("https://user:hunter2-SECRET@proxy.internal:3128", "https"),
    ("socks5://user:hunter2-SECRET@proxy.internal:1080", "socks5"),
    ("http://user:hunter2-SECRET@:3128", "http://"),
    ("http://user:hunter2-SECRET@proxy.internal:3128/some/path", "http://"),
    ("http://user:hunter2-SECRET@proxy.internal:99999", "http://"),
])
def test_bad_proxy_url_is_refused_without_showing_it(tmp_path, url, why):
    err = refused(tmp_path, f'proxy = "{url}"\n')
    assert err.key == "providers.up.proxy" and why in err.expected
    assert "hunter2" not in str(err) and "user" not in str(err).replace("users", "")


def test_bad_proxy_in_the_environment_is_refused_without_showing_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "https://user:hunter2-SECRET@proxy.internal:3128")
    err = refused(tmp_path, "")
    assert "HTTPS_PROXY" in err.key and "hunter2" not in str(err)


def _egress(proxy: str | None = None) -> Egress:
    e = Egress.compile(proxy=proxy, ca_bundle=None, client_cert=None, client_key=None, file="g.toml", key="providers.x")
    assert e is not None
    return e


def test_plain_path_when_nothing_is_set():
    assert Egress.compile(proxy=None, ca_bundle=None, client_cert=None, client_key=None, file="g.toml",
                          key="providers.x") is None


def test_proxy_off_for_a_provider_is_the_plain_path(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert Egress.compile(proxy="", ca_bundle=None, client_cert=None, client_key=None, file="g.toml",
                          key="providers.x") is None


def test_environment_proxies_and_no_proxy(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://secure.proxy:3128")
    monkeypatch.setenv("http_proxy", "http://plain.proxy:8080")
    monkeypatch.setenv("no_proxy", "internal.corp, 10.1.2.3,.svc.local")
    e = _egress()
    assert e.proxy_for(yarl.URL("https://api.openai.com/v1")).shown == "secure.proxy:3128"
    assert e.proxy_for(yarl.URL("http://vllm.example:8000/v1")).shown == "plain.proxy:8080"
    for direct in ("https://internal.corp/v1", "https://llm.internal.corp/v1", "http://10.1.2.3:8000/v1",
                   "http://vllm.svc.local/v1"):
        assert e.proxy_for(yarl.URL(direct)) is None, direct


def test_lower_case_wins_over_upper_case(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.proxy:3128")
    monkeypatch.setenv("https_proxy", "http://lower.proxy:3128")
    assert _egress().proxy_for(yarl.URL("https://api.openai.com/v1")).shown == "lower.proxy:3128"


def test_provider_proxy_ignores_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://env.proxy:3128")
    monkeypatch.setenv("NO_PROXY", "api.openai.com")
    e = _egress("http://own.proxy:3128")
    assert e.proxy_for(yarl.URL("https://api.openai.com/v1")).shown == "own.proxy:3128"


def test_heads_absolute_form_with_credentials_only_for_http_through_a_proxy():
    e = _egress("http://u%40corp:p%3Ass@proxy.internal:3128")
    plain = e.head(yarl.URL("http://vllm.example:8000/v1/chat/completions?x=1"))
    assert plain.startswith(b"POST http://vllm.example:8000/v1/chat/completions?x=1 HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic dUBjb3JwOnA6c3M=\r\n" in plain  # base64 of "u@corp:p:ss"
    tunnelled = e.head(yarl.URL("https://api.openai.com/v1/chat/completions"))
    assert tunnelled == b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
    shown = repr(e.proxy_for(yarl.URL("https://x.example/")))
    assert shown == "Proxy(proxy.internal:3128)"


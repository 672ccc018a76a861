"""Vertex AI-backed aliases: the Gemini wire on the aiplatform URL with an OAuth token that google-auth
gets from a service-account JSON made by the test (a fresh RSA key pair), signing a real JWT that the fake
token endpoint verifies; tokens expire and are refreshed. Driven by the openai and anthropic SDKs."""

from __future__ import annotations

import time

import anthropic
import openai
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.config.loader import load_config
from gateway.config.validate import ConfigError
from gateway.http.app import build_app
from tests.support.fake_gemini import FakeGemini, GReply, google_error, part, response, usage
from tests.support.gateway import TEST_KEY, base_config, write_config

MSGS = [{"role": "user", "content": "Say hello"}]
PATH = "/v1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.5-pro"
LIFETIME_S = 3600


@pytest.fixture
def key_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture
def vertex(servers, key_pair):
    fake = FakeGemini(public_key_pem=key_pair[1], token_lifetime_s=LIFETIME_S)
    fake.url = servers.serve(fake.app())
    yield fake
    assert fake.invalid == [], "every request the gateway sent must validate with google-genai's types"
    servers.stop_app(fake.url)


def service_account(tmp_path, url: str, private_pem: bytes) -> str:
    path = tmp_path / "sa.json"
    path.write_bytes(orjson.dumps({
        "type": "service_account", "project_id": "test-project", "private_key_id": "key-1",
        "private_key": private_pem.decode(), "client_email": "gateway@test-project.iam.gserviceaccount.com",
        "client_id": "1234567890", "token_uri": url + "/token"}))
    return str(path)


def vertex_config(url: str, credentials: str) -> str:
    return f"""
[providers.vertex]
type = "vertex"
base_url = "{url}/v1"
location = "us-central1"
credentials_file = "{credentials}"

[models.pro]
targets = [{{ provider = "vertex", model = "gemini-2.5-pro" }}]
retry_budget_s = 1
"""


@pytest.fixture
def gw(make_gateway, vertex, key_pair, tmp_path):
    return make_gateway(extra=vertex_config(vertex.url, service_account(tmp_path, vertex.url, key_pair[0])))


def chat_client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TEST_KEY, max_retries=0)


def test_chat_and_messages_reach_vertex_with_a_signed_service_account_token(gw, vertex):
    vertex.push(GReply(body=response([part("Hi from Vertex")], meta=usage(12, 4), model="gemini-2.5-pro")))
    r = chat_client(gw).chat.completions.create(model="pro", messages=MSGS)
    assert r.choices[0].message.content == "Hi from Vertex" and r.usage.total_tokens == 16
    seen = vertex.requests[-1]
    assert seen.path == PATH + ":generateContent"
    assert seen.headers["authorization"] == "Bearer ya29.fake-token-1" and "x-goog-api-key" not in seen.headers
    claims = vertex.token_requests[0]
    assert claims["iss"] == "gateway@test-project.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    with anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0).messages.stream(
            model="pro", max_tokens=50, messages=MSGS) as s:
        final = s.get_final_message()
    assert final.content[0].text == "Hello from Gemini!"
    assert vertex.requests[-1].path == PATH + ":streamGenerateContent" and vertex.requests[-1].query == "alt=sse"
    assert len(vertex.token_requests) == 1, "a valid token is reused"


def test_an_expired_token_is_refreshed(gw, vertex):
    # google-auth treats a token as expired 3 min 45 s before its end: one issued for 227 s is stale 2 s later.
    vertex.token_lifetime_s = 225 + 2
    chat_client(gw).chat.completions.create(model="pro", messages=MSGS)
    assert vertex.requests[-1].headers["authorization"] == "Bearer ya29.fake-token-1"
    time.sleep(2.5)
    vertex.token_lifetime_s = LIFETIME_S
    chat_client(gw).chat.completions.create(model="pro", messages=MSGS)
    assert len(vertex.token_requests) == 2
    assert vertex.requests[-1].headers["authorization"] == "Bearer ya29.fake-token-2"
    chat_client(gw).chat.completions.create(model="pro", messages=MSGS)
    assert len(vertex.token_requests) == 2 and vertex.requests[-1].headers["authorization"] == "Bearer ya29.fake-token-2"


def test_a_token_endpoint_that_refuses_is_a_502_in_the_callers_shape(make_gateway, vertex, tmp_path):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    gw = make_gateway(extra=vertex_config(vertex.url, service_account(tmp_path, vertex.url, other)))
    with pytest.raises(openai.APIStatusError) as exc:  # signed with a key the token endpoint does not know
        chat_client(gw).chat.completions.create(model="pro", messages=MSGS)
    assert exc.value.status_code == 502 and exc.value.body["code"] == "upstream_auth_failed"
    assert vertex.requests == [] and vertex.token_requests == []
    with pytest.raises(anthropic.APIStatusError) as aexc:
        anthropic.Anthropic(base_url=gw.url, api_key=TEST_KEY, max_retries=0).messages.create(
            model="pro", max_tokens=10, messages=MSGS)
    assert aexc.value.status_code == 502 and aexc.value.body["type"] == "error"


def test_vertex_errors_map_like_gemini(gw, vertex):
    quota = GReply(status=429, body=google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for "
                                                 "aiplatform.googleapis.com/generate_content_requests_per_minute"))
    vertex.push(quota, quota, quota)  # retried (max_attempts 3), then passed on
    with pytest.raises(openai.RateLimitError):
        chat_client(gw).chat.completions.create(model="pro", messages=MSGS)
    assert len(vertex.requests) == 3
    vertex.push(GReply(status=403, body=google_error(403, "PERMISSION_DENIED", "Permission denied on resource")))
    with pytest.raises(openai.APIStatusError) as exc:
        chat_client(gw).chat.completions.create(model="pro", messages=MSGS)
    assert exc.value.status_code == 502 and exc.value.body["code"] == "upstream_auth_failed"


def test_unreadable_credentials_fail_the_config_naming_the_key(tmp_path, upstream):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    path = write_config(tmp_path, base_config(upstream.url, vertex_config("http://127.0.0.1:9", str(bad))))
    with pytest.raises(ConfigError) as exc:
        build_app(load_config(str(path)))
    assert "providers.vertex.credentials_file" in str(exc.value)


def test_the_access_token_is_never_shown_in_an_upstream_error(gw, vertex):
    chat_client(gw).chat.completions.create(model="pro", messages=MSGS)
    vertex.push(GReply(status=400, body=google_error(400, "INVALID_ARGUMENT", "bad call with ya29.fake-token-1 here")))
    with pytest.raises(openai.BadRequestError) as exc:
        chat_client(gw).chat.completions.create(model="pro", messages=MSGS)
    assert "ya29.fake-token-1" not in str(exc.value.body) and "[redacted]" in exc.value.body["message"]


def test_a_refused_token_is_replaced_on_the_next_request(gw, vertex):
    chat_client(gw).chat.completions.create(model="pro", messages=MSGS)
    vertex.tokens.clear()  # the upstream forgets (revokes) every token it issued
    with pytest.raises(openai.APIStatusError) as exc:
        chat_client(gw).chat.completions.create(model="pro", messages=MSGS)
    assert exc.value.status_code == 502 and exc.value.body["code"] == "upstream_auth_failed"
    r = chat_client(gw).chat.completions.create(model="pro", messages=MSGS)
    assert r.choices[0].message.content == "Hello from Gemini!"
    assert len(vertex.token_requests) == 2 and vertex.requests[-1].headers["authorization"] == "Bearer ya29.fake-token-2"

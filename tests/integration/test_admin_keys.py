"""Keys over the admin API (`/admin/keys`), driven over real sockets: the openai SDK calls with the keys,
httpx calls the admin API. Store-dependent tests run on the memory store and on a real redis-server."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from tests.support.gateway import TEST_KEY

MSGS = [{"role": "user", "content": "Say hello"}]
ADMIN_KEY = "admin-secret-0123456789"
READ_KEY = "reader-secret-0123456789"
ADMIN = """
[admin]
key_env = "TEST_ADMIN_KEY"
keys = [{ id = "auditor", key_env = "TEST_READ_KEY", role = "read" }]
"""
AUDIT = """
[audit]
flush_interval_ms = 2
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
"""


@pytest.fixture(autouse=True)
def admin_env(monkeypatch):
    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("TEST_READ_KEY", READ_KEY)


def admin(gw, method: str, path: str, key: str = ADMIN_KEY, headers: dict | None = None, **kw) -> httpx.Response:
    return httpx.request(method, gw.url + path, headers={"Authorization": f"Bearer {key}", **(headers or {})},
                         timeout=10, **kw)


def chat(gw, key: str, model: str = "demo", **kw):
    return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0).chat.completions.create(
        model=model, messages=MSGS, **kw)


def status(gw, key: str, model: str = "demo", **kw) -> tuple[int, str | None]:
    try:
        chat(gw, key, model, **kw)
        return 200, None
    except openai.APIStatusError as exc:
        return exc.status_code, (exc.body or {}).get("code")


@pytest.fixture
def gw(make_gateway, store_url):
    return make_gateway(extra=ADMIN + f'\n[store]\nurl = "{store_url}"\n')


def create(gw, **body) -> dict:
    r = admin(gw, "POST", "/admin/keys", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_created_key_works_its_secret_is_shown_once_and_toml_keys_are_listed_read_only(gw, store_url):
    out = create(gw, id="svc-a", team="payments", models=["demo"], tags=["batch"])
    secret = out["secret"]
    assert secret.startswith("sk-gw-") and out["key"]["team"] == "payments"
    assert chat(gw, secret).choices[0].message.content
    assert status(gw, secret, "gpt") == (403, "model_not_allowed")
    listed = admin(gw, "GET", "/admin/keys").json()
    assert secret not in orjson.dumps(listed).decode()
    assert secret not in admin(gw, "GET", "/admin/keys/svc-a").text
    by_id = {k["id"]: k for k in listed["data"]}
    assert by_id["svc-a"]["source"] == "api" and by_id["svc-a"]["read_only"] is False
    assert by_id["test"]["source"] == "config" and by_id["test"]["read_only"] is True
    memory = store_url.startswith("memory://")
    assert listed["store"]["persistent"] is (not memory)
    if memory:
        assert "lost when it restarts" in listed["store"]["note"]
    # A TOML key is changed in its file only.
    for method, path in (("PATCH", "/admin/keys/test"), ("POST", "/admin/keys/test/rotate")):
        r = admin(gw, method, path, json={})
        assert r.status_code == 409 and r.json()["error"]["code"] == "key_read_only", r.text
    # An id a TOML key or an earlier key has is refused, and the first key is untouched.
    for key_id in ("test", "svc-a"):
        r = admin(gw, "POST", "/admin/keys", json={"id": key_id})
        assert r.status_code == 409 and r.json()["error"]["code"] == "key_exists"
    assert status(gw, secret) == (200, None)


def test_update_changes_team_models_tags_and_limits(gw):
    secret = create(gw, id="svc-b", models=["demo"])["secret"]
    assert status(gw, secret, "gpt")[0] == 403
    r = admin(gw, "PATCH", "/admin/keys/svc-b", json={"models": [], "team": "ops", "tags": ["t1"],
                                                        "limits": {"rpm": 1}})
    assert r.status_code == 200, r.text
    assert r.json()["team"] == "ops" and r.json()["limits"] == {"rpm": 1}
    assert status(gw, secret, "gpt") == (200, None)
    assert status(gw, secret, "gpt") == (429, "rate_limit_exceeded")
    r = admin(gw, "PATCH", "/admin/keys/svc-b", json={"limits": None})
    assert r.json()["limits"] is None
    assert status(gw, secret, "gpt") == (200, None)


def test_revoke_and_unrevoke_a_managed_key(gw):
    secret = create(gw, id="svc-c")["secret"]
    assert admin(gw, "POST", "/admin/keys/svc-c/revoke").json()["key"]["revoked"] is True
    assert status(gw, secret) == (401, "revoked_api_key")
    assert admin(gw, "POST", "/admin/keys/svc-c/unrevoke").status_code == 200
    assert status(gw, secret) == (200, None)


def test_rotation_keeps_the_old_secret_for_the_stated_grace_only(gw):
    old = create(gw, id="svc-r")["secret"]
    r = admin(gw, "POST", "/admin/keys/svc-r/rotate", json={"grace_s": 1.5})
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != old and r.json()["grace_s"] == 1.5
    until = datetime.fromisoformat(r.json()["previous_valid_until"].replace("Z", "+00:00")).timestamp()
    assert abs(until - (time.time() + 1.5)) < 1.0
    assert status(gw, old) == (200, None) and status(gw, new) == (200, None)
    time.sleep(max(0.0, until - time.time()) + 0.1)
    assert status(gw, old) == (401, "expired_api_key")
    assert status(gw, new) == (200, None)
    # No grace: the old secret stops at once.
    newer = admin(gw, "POST", "/admin/keys/svc-r/rotate", json={"grace_s": 0}).json()["secret"]
    assert status(gw, new) == (401, "expired_api_key") and status(gw, newer) == (200, None)


def test_expiry(gw):
    at = datetime.now(timezone.utc) + timedelta(seconds=1.5)
    secret = create(gw, id="svc-e", expires_at=at.isoformat())["secret"]
    assert status(gw, secret) == (200, None)
    time.sleep(max(0.0, at.timestamp() - time.time()) + 0.1)
    assert status(gw, secret) == (401, "expired_api_key")
    assert admin(gw, "GET", "/admin/keys/svc-e").json()["expired"] is True
    # Extending the expiry brings it back.
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert admin(gw, "PATCH", "/admin/keys/svc-e", json={"expires_at": later}).status_code == 200
    assert status(gw, secret) == (200, None)


def test_roles_read_only_key_lists_but_cannot_change(gw):
    create(gw, id="svc-ro")
    assert admin(gw, "GET", "/admin/keys", key=READ_KEY).status_code == 200
    assert admin(gw, "GET", "/admin/keys", key=READ_KEY).json()["you"] == {"id": "auditor", "role": "read"}
    assert admin(gw, "GET", "/admin/keys/svc-ro", key=READ_KEY).status_code == 200
    assert admin(gw, "GET", "/stats", key=READ_KEY).status_code == 200
    for method, path, body in (("POST", "/admin/keys", {"id": "x"}), ("PATCH", "/admin/keys/svc-ro", {"team": "x"}),
                               ("POST", "/admin/keys/svc-ro/revoke", None), ("POST", "/admin/keys/test/revoke", None),
                               ("POST", "/admin/keys/svc-ro/unrevoke", None), ("POST", "/admin/keys/svc-ro/rotate", {})):
        r = admin(gw, method, path, key=READ_KEY, json=body)
        assert r.status_code == 403, (path, r.text)
        err = r.json()["error"]
        assert err["type"] == "permission_error" and err["code"] == "admin_read_only"
        assert "auditor" in err["message"] and "read-only" in err["message"]
        r = admin(gw, method, path, key="not-an-admin-key", json=body)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_admin_key"
    assert httpx.get(gw.url + "/admin/keys", timeout=5).status_code == 401
    keys = {k["id"]: k for k in admin(gw, "GET", "/admin/keys").json()["data"]}
    assert "x" not in keys and keys["svc-ro"]["team"] is None and keys["svc-ro"]["revoked"] is False


@pytest.mark.parametrize("method,suffix", [("GET", ""), ("PATCH", ""), ("POST", "/revoke"), ("POST", "/unrevoke"),
                                           ("POST", "/rotate")])
def test_an_unknown_key_id_is_404(gw, method, suffix):
    r = admin(gw, method, f"/admin/keys/no-such-key{suffix}", json={})
    assert r.status_code == 404
    assert r.json()["error"] == {"message": r.json()["error"]["message"], "type": "not_found_error", "param": None,
                                 "code": "unknown_key"}
    assert "no-such-key" in r.json()["error"]["message"]


BAD_CREATE = [
    (b"{not json", None),
    (b"[1, 2]", None),
    (b"\x0c", None),  # not JSON whitespace (bytes.strip() took it for an empty body: a key was made)
    (b"\x0b{}", None),
    (b'{"id": "has space"}', "id"),
    (b'{"id": ""}', "id"),
    (b'{"nope": 1}', "nope"),
    (b'{"team": 5}', "team"),
    (b'{"models": "demo"}', "models"),
    
    (b'{"models": ["demo", 7]}', "models[1]"),
    (b'{"tags": [1]}', "tags[0]"),
    (b'{"expires_at": "next tuesday"}', "expires_at"),
    (b'{"limits": {"rpm": -1}}', "limits.rpm"),
    (b'{"limits": {"rpm": "5"}}', "limits.rpm"),
    (b'{"limits": {"rpm": true}}', "limits.rpm"),
    (b'{"limits": {"budget_usd": -1}}', "limits.budget_usd"),
    (b'{"limits": {"budget_window": "year"}}', "limits.budget_window"),
    (b'{"limits": {"burst": 1}}', "limits.burst"),
    (b'{"limits": [1]}', "limits"),
]


@pytest.mark.parametrize("body,param", BAD_CREATE)
def test_bad_input_is_a_400_that_names_the_field_and_changes_nothing(gw, body, param):
    before = admin(gw, "GET", "/admin/keys").json()["data"]
    r = admin(gw, "POST", "/admin/keys", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == param and err["message"]
    assert admin(gw, "GET", "/admin/keys").json()["data"] == before


def test_bad_updates_and_rotations_are_400_and_change_nothing(gw):
    secret = create(gw, id="svc-bad", team="a")["secret"]
    for body, param in ((b'{"team": 1}', "team"), (b'{"id": "other"}', "id"), (b'{"limits": {"tpm": -5}}', "limits.tpm")):
        r = admin(gw, "PATCH", "/admin/keys/svc-bad", content=body)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    for body, param in ((b'{"grace_s": -1}', "grace_s"), (b'{"grace_s": 99999999}', "grace_s"),
                        (b'{"grace_s": "1"}', "grace_s")):
        r = admin(gw, "POST", "/admin/keys/svc-bad/rotate", content=body)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    assert admin(gw, "GET", "/admin/keys/svc-bad").json()["team"] == "a"
    assert status(gw, secret) == (200, None)


def test_every_change_is_an_audit_record_without_the_secret(make_gateway):
    gw = make_gateway(extra=ADMIN + AUDIT)
    secret = create(gw, id="svc-audit", team="t")["secret"]
    admin(gw, "PATCH", "/admin/keys/svc-audit", json={"team": "u", "limits": {"rpm": 5}})
    rotated = admin(gw, "POST", "/admin/keys/svc-audit/rotate", json={"grace_s": 0}).json()["secret"]
    admin(gw, "POST", "/admin/keys/svc-audit/revoke")
    admin(gw, "POST", "/admin/keys/svc-audit/unrevoke")
    admin(gw, "POST", "/admin/keys/test/revoke")
    path = Path(gw.config_path).parent / "audit" / "records.jsonl"
    deadline = time.time() + 10
    changes: list[dict] = []
    while time.time() < deadline and len(changes) < 6:
        if path.exists():
            text = path.read_text()
            changes = [r for r in map(orjson.loads, text.splitlines()) if r.get("type") == "key_change"]
        time.sleep(0.05)
    assert [(c["action"], c["key_id"], c["key_source"]) for c in changes] == [
        ("create", "svc-audit", "api"), ("update", "svc-audit", "api"), ("rotate", "svc-audit", "api"),
        ("revoke", "svc-audit", "api"), ("unrevoke", "svc-audit", "api"), ("revoke", "test", "config")]
    assert changes[0]["changes"] == {"team": "t"}
    assert changes[1]["changes"] == {"team": "u", "limits": {"rpm": 5, "rps": None, "tpm": None, "tpd": None,
                                                            "concurrency": None, "budget_usd": None,
                                                            "budget_window": None}}
    assert all(c["actor"] == {"id": "admin", "role": "admin", "via": "key"} for c in changes)
    assert all(c["hash"] and c["writer"] for c in changes)
    for s in (secret, rotated):
        assert s not in text
        assert __import__("hashlib").sha256(s.encode()).hexdigest() not in text
    # They are links of the chain like any record: the verifier accepts the file, and a query reads it.
    from tests.integration.test_cli import gateway as run_cli

    out = run_cli("audit", "verify", "--config", str(gw.config_path), "--source", "file")
    assert out.returncode == 0 and out.stdout.startswith("ok ") and "BROKEN" not in out.stdout, out.stdout + out.stderr
    assert int(out.stdout.split(": ", 1)[1].split()[0]) >= len(changes)
    out = run_cli("audit", "query", "--config", str(gw.config_path), "--source", "file", "--key", "svc-audit")
    assert out.returncode == 0, out.stdout + out.stderr


def test_managed_keys_and_their_limits_survive_a_hot_reload(make_gateway, servers):
    from gateway.http.server import reload_config

    gw = make_gateway(extra=ADMIN)
    secret = create(gw, id="svc-reload", limits={"rpm": 2})["secret"]
    assert status(gw, secret) == (200, None)
    assert servers.run(reload_config(gw.app)) is True
    assert gw.state.runtime.generation == 1
    assert status(gw, secret) == (200, None)
    assert status(gw, secret) == (429, "rate_limit_exceeded")  # the counter carried over, as for TOML rules


def test_the_session_cookie_changes_keys_only_with_the_dashboard_header_from_this_origin(gw):
    from urllib.parse import urlsplit

    from gateway.http import admin_session

    cookie = {admin_session.COOKIE: admin_session.mint(ADMIN_KEY)}
    read_cookie = {admin_session.COOKIE: admin_session.mint(READ_KEY)}
    host = urlsplit(gw.url).netloc

    def post(cookies, headers):
        return httpx.post(gw.url + "/admin/keys", json={"id": "via-cookie"}, cookies=cookies, headers=headers,
                          timeout=10)

    assert httpx.get(gw.url + "/admin/keys", cookies=cookie, timeout=10).status_code == 200
    assert post(cookie, {}).status_code == 401  # a cookie alone: what a cross-site form would carry
    assert post(cookie, {"x-gateway-dashboard": "1", "Origin": "https://evil.example"}).status_code == 401
    assert post(read_cookie, {"x-gateway-dashboard": "1", "Origin": f"http://{host}"}).status_code == 403
    r = post(cookie, {"x-gateway-dashboard": "1", "Origin": f"http://{host}"})
    assert r.status_code == 201, r.text


def test_a_keys_own_budget_is_in_stats_like_a_configured_one(make_gateway):
    gw = make_gateway(extra=ADMIN + '\n[pricing."mock-1"]\ninput = 1.0\noutput = 1.0\n')
    secret = create(gw, id="svc-budget", limits={"budget_usd": 2.5, "budget_window": "week"})["secret"]
    assert status(gw, secret) == (200, None)
    budgets = admin(gw, "GET", "/stats").json()["budgets"]
    (mine,) = [b for b in budgets if b["subject"] == "svc-budget"]
    assert (mine["id"], mine["scope"], mine["unit"], mine["limit"]) == ("key:svc-budget:budget", "key", "usd", 2.5)
    assert mine["spent"] > 0


def test_a_usd_budget_over_an_unpriced_model_is_refused_as_at_load_and_changes_nothing(make_gateway):
    """As a [[budgets]] USD rule is a config error when an alias it covers reaches a model without a price
    (it would cost $0 and never stop), so is a key's own USD budget: on create and on update."""
    gw = make_gateway(extra=ADMIN)  # the test config prices nothing
    before = admin(gw, "GET", "/admin/keys").json()["data"]
    for body in ({"id": "svc-usd", "limits": {"budget_usd": 5}},
                 {"id": "svc-usd", "models": ["demo"], "limits": {"budget_usd": 0.5, "budget_window": "day"}}):
        r = admin(gw, "POST", "/admin/keys", json=body)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["param"] == "limits.budget_usd" and "no price" in err["message"] and "demo" in err["message"]
    assert admin(gw, "GET", "/admin/keys").json()["data"] == before
    # A budget of $0 refuses everything it covers: it needs no price. Then raising it is refused the same way.
    create(gw, id="svc-zero", limits={"budget_usd": 0})
    r = admin(gw, "PATCH", "/admin/keys/svc-zero", json={"limits": {"budget_usd": 3}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "limits.budget_usd", r.text
    assert admin(gw, "GET", "/admin/keys/svc-zero").json()["limits"]["budget_usd"] == 0

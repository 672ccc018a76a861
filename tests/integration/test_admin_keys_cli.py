"""`gateway keys ... --url`: the CLI goes through the admin API; an unknown key id is an error."""

from __future__ import annotations

import json

import openai
import pytest

from tests.integration.test_cli import gateway as run_cli

ADMIN_KEY = "admin-secret-0123456789"
READ_KEY = "reader-secret-0123456789"
ADMIN = """
[admin]
key_env = "TEST_ADMIN_KEY"
keys = [{ id = "auditor", key_env = "TEST_READ_KEY", role = "read" }]
"""
ENV = {"GATEWAY_ADMIN_KEY": ADMIN_KEY}


@pytest.fixture
def gw(make_gateway, monkeypatch):
    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("TEST_READ_KEY", READ_KEY)
    return make_gateway(extra=ADMIN)


def works(gw, secret: str) -> int:
    try:
        openai.OpenAI(base_url=gw.v1, api_key=secret, max_retries=0).chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "hi"}])
        return 200
    except openai.APIStatusError as exc:
        return exc.status_code


def secret_of(stdout: str, prefix: str) -> str:
    line = next(x for x in stdout.splitlines() if x.startswith(prefix))
    return line.split(": ", 1)[1].strip()


def test_create_list_update_rotate_revoke_through_the_api(gw):
    out = run_cli("keys", "create", "--url", gw.url, "--id", "cli-1", "--team", "t", "--rpm", "100", env=ENV)
    assert out.returncode == 0, out.stderr
    secret = secret_of(out.stdout, "secret (shown once")
    assert "lost when it restarts" in out.stdout  # the memory store says so
    assert works(gw, secret) == 200
    out = run_cli("keys", "list", "--url", gw.url, env=ENV)
    assert out.returncode == 0 and "cli-1" in out.stdout and "rpm=100" in out.stdout and secret not in out.stdout
    assert "test" in out.stdout and "config(ro)" in out.stdout
    out = run_cli("keys", "update", "cli-1", "--url", gw.url, "--tpm", "5000", env=ENV)
    assert out.returncode == 0, out.stderr
    shown = json.loads(run_cli("keys", "show", "cli-1", "--url", gw.url, env=ENV).stdout)
    assert shown["limits"] == {"rpm": 100, "tpm": 5000}  # the limits not named are kept
    out = run_cli("keys", "update", "cli-1", "--url", gw.url, "--team", "u", "--clear", "limits", env=ENV)
    assert out.returncode == 0, out.stderr
    shown = json.loads(run_cli("keys", "show", "cli-1", "--url", gw.url, env=ENV).stdout)
    assert shown["team"] == "u" and shown["limits"] is None
    out = run_cli("keys", "rotate", "cli-1", "--url", gw.url, "--grace", "0", env=ENV)
    assert out.returncode == 0, out.stderr
    new = secret_of(out.stdout, "new secret")
    assert works(gw, new) == 200 and works(gw, secret) == 401
    assert run_cli("keys", "revoke", "cli-1", "--url", gw.url, env=ENV).returncode == 0
    assert works(gw, new) == 401
    assert run_cli("keys", "unrevoke", "cli-1", "--url", gw.url, env=ENV).returncode == 0
    assert works(gw, new) == 200


@pytest.mark.parametrize("op", ["show", "update", "rotate", "revoke", "unrevoke"])
def test_an_unknown_key_id_is_an_error(gw, op):
    out = run_cli("keys", op, "no-such-key", "--url", gw.url, env=ENV)
    assert out.returncode == 1
    assert "no key with id 'no-such-key'" in out.stderr


def test_a_read_only_admin_key_cannot_change_and_says_why(gw):
    out = run_cli("keys", "create", "--url", gw.url, env={"GATEWAY_ADMIN_KEY": READ_KEY})
    assert out.returncode == 1 and "403" in out.stderr and "read-only" in out.stderr
    out = run_cli("keys", "list", "--url", gw.url, env={"GATEWAY_ADMIN_KEY": READ_KEY})
    assert out.returncode == 0
    out = run_cli("keys", "list", "--url", gw.url, env={"GATEWAY_ADMIN_KEY": "wrong"})
    assert out.returncode == 1 and "401" in out.stderr


def test_bad_values_are_refused_with_the_field_named(gw):
    out = run_cli("keys", "create", "--url", gw.url, "--models", "no-such-alias", env=ENV)
    assert out.returncode == 1 and "models[0]" in out.stderr
    out = run_cli("keys", "create", "--url", gw.url, "--expires", "soon", env=ENV)
    assert out.returncode == 1 and "expires_at" in out.stderr

"""Virtual keys are kept only as digests and compared in constant time; the admin key too; and a
gateway bound off loopback refuses to start without an admin key unless `[admin] public = true`."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time

import httpx
import pytest

from gateway import auth
from gateway.config.validate import SourcedRule
from tests.faults.procs import LoggedGateway
from tests.support.gateway import TEST_KEY, base_config, write_config
from tests.support.processes import ROOT, free_port

PLAIN = "sk-plain-demo-secret-123"
FROM_ENV = "sk-from-env-secret-456"


def reachable(obj, seen=None):
    """Every object reachable from `obj` through attributes, slots and containers."""
    seen = seen if seen is not None else set()
    if id(obj) in seen or isinstance(obj, (int, float, bool, type(None), type)):
        return
    seen.add(id(obj))
    yield obj
    children = []
    if isinstance(obj, dict):
        children = [*obj.keys(), *obj.values()]
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = list(obj)
    elif not isinstance(obj, (str, bytes)):
        children = list(getattr(obj, "__dict__", {}).values())
        for cls in type(obj).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(obj, slot):
                    children.append(getattr(obj, slot))
    for child in children:
        yield from reachable(child, seen)


def table(monkeypatch) -> auth.KeyTable:
    monkeypatch.setenv("SECURITY_TEST_KEY", FROM_ENV)
    rules = [SourcedRule(file="keys.toml", key=f"keys[{i}]", data=d) for i, d in enumerate([
        {"id": "hashed", "key_sha256": hashlib.sha256(TEST_KEY.encode()).hexdigest()},
        {"id": "env", "key_env": "SECURITY_TEST_KEY"},
        {"id": "plain", "key": PLAIN},
    ])]
    return auth.KeyTable.compile(rules, {})


def test_the_key_table_holds_digests_only(monkeypatch):
    keys = table(monkeypatch)
    for secret in (TEST_KEY, FROM_ENV, PLAIN):
        assert keys.authenticate({"Authorization": f"Bearer {secret}"}).key_id
        for obj in reachable(keys):
            if isinstance(obj, (str, bytes)):
                raw = secret if isinstance(obj, str) else secret.encode()
                assert raw not in obj, "a key secret is kept in memory"
    digests = [o for o in reachable(keys) if isinstance(o, bytes) and len(o) == 32]
    assert len(digests) == 3


def test_keys_are_compared_in_constant_time_against_every_candidate(monkeypatch):
    keys = table(monkeypatch)
    calls = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert keys.authenticate({"Authorization": f"Bearer {FROM_ENV}"}).key_id == "env"
    assert calls == [(32, 32)], "the match is confirmed with hmac.compare_digest on full digests"
    # Candidates are found by a digest prefix: the lookup never touches the secret itself.
    assert all(len(prefix) == 8 for prefix in keys._by_prefix)


def test_the_admin_key_is_compared_in_constant_time(make_gateway, monkeypatch):
    from gateway.http import admin_auth as admin  # where admin keys (and their roles) are matched

    monkeypatch.setenv("SECURITY_ADMIN_KEY", "adm-" + "k" * 20)
    gw = make_gateway(extra='[admin]\nkey_env = "SECURITY_ADMIN_KEY"\n')
    calls = []
    real = admin.hmac.compare_digest
    monkeypatch.setattr(admin.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert httpx.get(gw.url + "/stats", headers={"x-admin-key": "wrong"}).status_code == 401
    assert httpx.get(gw.url + "/stats", headers={"x-admin-key": "adm-" + "k" * 20}).status_code == 200
    assert len(calls) >= 2


def serve(cfg, host: str, env: dict | None = None) -> subprocess.CompletedProcess:
    port = free_port()
    cmd = [sys.executable, "-m", "gateway", "serve", "--config", str(cfg), "--host", host, "--port", str(port)]
    return port, subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30,
                                env={**__import__("os").environ, **(env or {})})


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("admin,needle", [
    ("", "without a key on 0.0.0.0"),
    ('[admin]\nkey_env = "SECURITY_UNSET_ADMIN_KEY"\n', "SECURITY_UNSET_ADMIN_KEY, which is not set"),
])
def test_off_loopback_without_an_admin_key_the_gateway_refuses_before_binding(tmp_path, admin, needle):
    cfg = write_config(tmp_path, base_config("http://127.0.0.1:9", extra=admin))
    port, out = serve(cfg, "0.0.0.0")
    assert out.returncode == 2 and needle in out.stderr
    assert not listening(port)


@pytest.mark.parametrize("key,needle", [
    ("   ", "is only whitespace"), ("\t\n", "is only whitespace"),
    (" adm-kkkkkkkkkkkkkkkkkkkk", "starts or ends with whitespace"),
    ("short-key", "is 9 characters; serving on 0.0.0.0 needs at least 16"),
])
def test_off_loopback_a_blank_padded_or_short_admin_key_is_refused_before_binding(tmp_path, key, needle):
    cfg = write_config(tmp_path, base_config("http://127.0.0.1:9", extra='[admin]\nkey_env = "SECURITY_WEAK_ADMIN_KEY"\n'))
    port, out = serve(cfg, "0.0.0.0", env={"SECURITY_WEAK_ADMIN_KEY": key})
    assert out.returncode == 2 and needle in out.stderr, out.stderr
    assert not listening(port)


def test_off_loopback_with_public_admin_it_serves(tmp_path):
    cfg = write_config(tmp_path, base_config("http://127.0.0.1:9", extra="[admin]\npublic = true\n"))
    gw = LoggedGateway(cfg, tmp_path / "gw.log", host="0.0.0.0")
    try:
        assert httpx.get(gw.url + "/health").status_code == 200
    finally:
        assert gw.stop() == 0

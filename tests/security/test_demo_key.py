"""The demo key's secret `sk-gateway-demo` is published in the README: a gateway bound off loopback
refuses to start while any key has it (given as `key`, `key_sha256` or through `key_env`), unless
`[server] allow_demo_key = true` says so, and refuses a hot reload that brings it in; on loopback the demo
works as before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.faults.procs import LoggedGateway
from tests.security.test_keys_and_preflight import listening
from tests.support.gateway import base_config, sha, write_config
from tests.support.processes import ROOT, free_port

DEMO = "sk-gateway-demo"
ADMIN = {"GW_DEMO_TEST_ADMIN": "admin-secret-0123456789abcdef", "GW_DEMO_TEST_KEY": DEMO}
ADMIN_TABLE = '[admin]\nkey_env = "GW_DEMO_TEST_ADMIN"\n'


def serve(cfg, host: str, env: dict | None = None):
    port = free_port()
    cmd = [sys.executable, "-m", "gateway", "serve", "--config", str(cfg), "--host", host, "--port", str(port)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30, env={**os.environ, **ADMIN, **(env or {})})
    return port, out


@pytest.mark.parametrize("given", [f'key = "{DEMO}"', f'key_sha256 = "{sha(DEMO)}"', 'key_env = "GW_DEMO_TEST_KEY"'])
def test_off_loopback_a_key_with_the_demo_secret_is_refused_before_binding(tmp_path, given):
    cfg = write_config(tmp_path, base_config("http://127.0.0.1:9", extra=ADMIN_TABLE),
                       {"demo.toml": f'[[keys]]\nid = "demo"\n{given}\n'})
    port, out = serve(cfg, "0.0.0.0")
    assert out.returncode == 2, out.stderr
    assert "key demo (demo.toml) has the demo secret 'sk-gateway-demo'" in out.stderr
    assert "published in the README" in out.stderr and "allow_demo_key = true" in out.stderr
    assert not listening(port)


def test_a_key_env_holding_another_secret_is_not_the_demo_key(tmp_path):
    cfg = write_config(tmp_path, base_config("http://127.0.0.1:9", extra=ADMIN_TABLE),
                       {"demo.toml": '[[keys]]\nid = "demo"\nkey_env = "GW_DEMO_TEST_KEY"\n'})
    gw = LoggedGateway(cfg, tmp_path / "gw.log", host="0.0.0.0", env={**ADMIN, "GW_DEMO_TEST_KEY": "sk-not-the-demo-0123"})
    try:
        assert httpx.get(gw.url + "/health").status_code == 200
    finally:
        assert gw.stop() == 0


@pytest.mark.parametrize("host,server", [("127.0.0.1", ""), ("0.0.0.0", "allow_demo_key = true")])
def test_the_demo_key_serves_on_loopback_or_when_allowed_explicitly(tmp_path, host, server):
    cfg = write_config(tmp_path, base_config("http://127.0.0.1:9", server=server, extra=ADMIN_TABLE),
                       {"demo.toml": f'[[keys]]\nid = "demo"\nkey = "{DEMO}"\n'})
    gw = LoggedGateway(cfg, tmp_path / "gw.log", host=host, env=ADMIN)
    try:
        r = httpx.get(gw.url + "/v1/models", headers={"Authorization": f"Bearer {DEMO}"})
        assert r.status_code == 200, r.text
    finally:
        assert gw.stop() == 0


def _reload_stats(url: str, generation: int, timeout: float = 15) -> dict:
    """/stats' config block once the SIGHUP reload has either swapped generation `generation` in or failed."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = httpx.get(url + "/stats", headers={"Authorization": f"Bearer {ADMIN['GW_DEMO_TEST_ADMIN']}"})
        cfg = r.json()["config"]
        if cfg["generation"] >= generation or cfg["reload_errors"]:
            return cfg
        time.sleep(0.1)
    raise AssertionError(f"no reload seen: {cfg}")


@pytest.mark.parametrize("given", [f'key = "{DEMO}"', f'key_sha256 = "{sha(DEMO)}"'])
def test_a_hot_reload_that_brings_in_the_demo_key_off_loopback_is_refused(tmp_path, given):
    """The start-up refusal holds on SIGHUP too: the file is refused like any bad file, the old config keeps
    serving (the demo key gets 401), and the log says why. A reload without it still goes through."""
    other = "sk-fresh-key-0123456789abcdef"
    cfg = write_config(tmp_path, base_config("http://127.0.0.1:9", extra=ADMIN_TABLE))
    gw = LoggedGateway(cfg, tmp_path / "gw.log", host="0.0.0.0", env=ADMIN)
    try:
        (tmp_path / "policies" / "fresh.toml").write_text(f'[[keys]]\nid = "fresh"\nkey = "{other}"\n')
        gw.signal(signal.SIGHUP)
        assert _reload_stats(gw.url, 1) == {"generation": 1, "reloads": 1, "reload_errors": 0}
        assert httpx.get(gw.url + "/v1/models", headers={"Authorization": f"Bearer {other}"}).status_code == 200

        (tmp_path / "policies" / "demo.toml").write_text(f'[[keys]]\nid = "demo"\n{given}\n')
        gw.signal(signal.SIGHUP)
        assert _reload_stats(gw.url, 2) == {"generation": 1, "reloads": 1, "reload_errors": 1}
        r = httpx.get(gw.url + "/v1/models", headers={"Authorization": f"Bearer {DEMO}"})
        assert r.status_code == 401, r.text
        assert httpx.get(gw.url + "/v1/models", headers={"Authorization": f"Bearer {other}"}).status_code == 200
        log = gw.output()
        assert "reload refused, keeping generation 1" in log
        assert "key demo (demo.toml) has the demo secret 'sk-gateway-demo'" in log and "allow_demo_key = true" in log
    finally:
        assert gw.stop() == 0


def test_a_hot_reload_may_bring_in_the_demo_key_when_allowed_explicitly(tmp_path):
    cfg = write_config(tmp_path, base_config("http://127.0.0.1:9", server="allow_demo_key = true", extra=ADMIN_TABLE))
    gw = LoggedGateway(cfg, tmp_path / "gw.log", host="0.0.0.0", env=ADMIN)
    try:
        assert httpx.get(gw.url + "/v1/models", headers={"Authorization": f"Bearer {DEMO}"}).status_code == 401
        (tmp_path / "policies" / "demo.toml").write_text(f'[[keys]]\nid = "demo"\nkey = "{DEMO}"\n')
        gw.signal(signal.SIGHUP)
        assert _reload_stats(gw.url, 1) == {"generation": 1, "reloads": 1, "reload_errors": 0}
        assert httpx.get(gw.url + "/v1/models", headers={"Authorization": f"Bearer {DEMO}"}).status_code == 200
    finally:
        assert gw.stop() == 0

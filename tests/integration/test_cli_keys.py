"""`gateway keys revoke|unrevoke`: an unknown id is an error, and both work through a running gateway's
admin endpoint (--url), which is what the memory store needs."""

from __future__ import annotations

import httpx
import pytest

from tests.faults.wire import AUTH, MSGS
from tests.integration.test_cli import gateway as run_cli
from tests.support.gateway import base_config, write_config


@pytest.fixture
def gateway_cfg(tmp_path):
    return write_config(tmp_path, base_config("http://127.0.0.1:9"))


def chat(gw) -> int:
    return httpx.post(gw.v1 + "/chat/completions", json={"model": "demo", "messages": MSGS}, headers=AUTH,
                      timeout=10).status_code


def test_revoking_or_restoring_an_unknown_key_id_fails_with_a_clear_message(gateway_cfg):
    for op in ("revoke", "unrevoke"):
        for extra in ([], ["--url", "http://127.0.0.1:9"]):
            out = run_cli("keys", op, "no-such-key", "--config", str(gateway_cfg), *extra)
            assert out.returncode == 1, out
            assert "no key with id 'no-such-key'" in out.stderr


def test_revoke_and_unrevoke_through_a_running_gateway(gateway):
    cfg = str(gateway.config_path)
    assert chat(gateway) == 200
    out = gateway_cli("revoke", cfg, gateway.url)
    assert out.returncode == 0 and '"revoked":"test"' in out.stdout, out
    assert chat(gateway) == 401
    out = gateway_cli("unrevoke", cfg, gateway.url)
    assert out.returncode == 0 and '"restored":"test"' in out.stdout, out
    assert chat(gateway) == 200


def test_the_admin_endpoints_refuse_an_unknown_key_id(gateway):
    for op in ("revoke", "unrevoke"):
        r = httpx.post(f"{gateway.url}/admin/keys/no-such-key/{op}", timeout=5)
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_key"


def gateway_cli(op: str, cfg: str, url: str):
    return run_cli("keys", op, "test", "--config", cfg, "--url", url)



"""The `gateway` command: check-config on good and bad files, --version, keys create."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

from tests.support.gateway import base_config, write_config

ROOT = Path(__file__).resolve().parents[2]


def gateway(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, **(env or {})})


def test_version():
    from gateway import __version__

    out = gateway("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"gateway {__version__}"


def test_check_config_on_the_example_prints_the_effective_routes():
    out = gateway("check-config", "--config", "config.example.toml")
    assert out.returncode == 0, out.stderr
    assert "demo -> mock/mock-1 (100%)" in out.stdout
    assert "policies/keys.toml" in out.stdout and "guardrails: 3" in out.stdout


def test_check_config_shows_whether_a_credential_is_set_never_its_value(tmp_path):
    cfg = write_config(tmp_path, base_config("http://127.0.0.1:9"))
    out = gateway("check-config", "--config", str(cfg), env={"TEST_UPSTREAM_KEY": "sk-very-secret-value-123"})
    assert out.returncode == 0
    assert "api_key_env=TEST_UPSTREAM_KEY (set)" in out.stdout
    assert "sk-very-secret-value-123" not in out.stdout + out.stderr


def test_check_config_names_file_key_and_expectation(tmp_path):
    cases = {
        "unknown key": (base_config("http://x").replace("[server]", "[server]\ncolour = 1"),
                        r"gateway\.toml: server\.colour: expected unknown key"),
        "bad TOML": ("[server\nport = 1", r"gateway\.toml: <file>: expected valid TOML"),
        "wrong type": (base_config("http://x").replace("[server]", "[server]\nport = \"eighty\""),
                       r"gateway\.toml: server\.port: expected"),
        "unknown provider": (base_config("http://x").replace('provider = "up"', 'provider = "nope"'),
                             r"models\.gpt\.targets: expected a provider declared in \[providers\]"),
        "unknown provider type": (base_config("http://x").replace('type = "openai"', 'type = "openia"'),
                                  r"providers\.up\.type: expected one of"),
    }
    for name, (text, pattern) in cases.items():
        d = tmp_path / name.replace(" ", "_")
        cfg = write_config(d, text)
        out = gateway("check-config", "--config", str(cfg), env={"TEST_UPSTREAM_KEY": "x"})
        assert out.returncode == 1, name
        assert re.search(pattern, out.stderr), (name, out.stderr)


def test_check_config_refuses_a_bad_policy_file_and_a_missing_env_var(tmp_path):
    cfg = write_config(tmp_path, base_config("http://x"), {"limits.toml": "[[rate_limits]]\nscope = \"planet\"\n"})
    out = gateway("check-config", "--config", str(cfg), env={"TEST_UPSTREAM_KEY": "x"})
    assert out.returncode == 1 and "limits.toml: rate_limits[0].scope" in out.stderr
    cfg2 = write_config(tmp_path / "b", base_config("http://x"))
    import os

    env = {k: v for k, v in os.environ.items() if k != "TEST_UPSTREAM_KEY"}
    out = subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config", str(cfg2)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert out.returncode == 1 and "the environment variable TEST_UPSTREAM_KEY to be set" in out.stderr


def test_keys_create_prints_a_secret_whose_hash_is_in_the_lines_to_paste(tmp_path):
    out = gateway("keys", "create", "--id", "svc-a", "--team", "payments", "--models", "gpt,demo")
    assert out.returncode == 0
    secret = re.search(r"secret \(shown once, give it to the caller\): (\S+)", out.stdout).group(1)
    lines = out.stdout.split("\n# paste into a policy file, then reload the gateway (SIGHUP):\n")[1]
    assert f'key_sha256 = "{hashlib.sha256(secret.encode()).hexdigest()}"' in lines
    assert secret not in lines
    cfg = write_config(tmp_path, base_config("http://x"), {"new.toml": lines})
    checked = gateway("check-config", "--config", str(cfg), env={"TEST_UPSTREAM_KEY": "x"})
    assert checked.returncode == 0 and "keys: 3" in checked.stdout

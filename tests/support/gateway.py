"""Start the gateway on loopback from a config written for the test."""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from gateway.config.loader import load_config
from gateway.http.app import build_app
from gateway.http.state import STATE, GatewayState

TEST_KEY = "sk-test-0123456789"
OTHER_KEY = "sk-other-0123456789"
UPSTREAM_SECRET = "sk-upstream-SECRET-never-shown-4242"


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# The [server] settings of every test config (a test's `server` lines override them).
TEST_SERVER = {"first_byte_timeout_s": "5", "idle_timeout_s": "2", "total_timeout_s": "20", "max_body_bytes": "65536"}


def base_config(upstream_url: str, extra: str = "", server: str = "") -> str:
    """A test config; `server` holds extra [server] lines, `extra` more tables after the base ones."""
    server_lines = dict(TEST_SERVER)
    for line in textwrap.dedent(server).strip().splitlines():
        k, _, v = line.partition("=")
        server_lines[k.strip()] = v.strip()
    server_text = "\n".join(f"        {k} = {v}" for k, v in server_lines.items())
    return textwrap.dedent(f"""
        policies = ["policies/*.toml"]

        [server]
{server_text}

        [providers.up]
        type = "openai"
        base_url = "{upstream_url}/v1"
        api_key_env = "TEST_UPSTREAM_KEY"

        [providers.mock]
        type = "mock"

        [models.gpt]
        targets = [{{ provider = "up", model = "gpt-4o-mini" }}]

        [models.demo]
        targets = [{{ provider = "mock", model = "mock-1" }}]
        """) + textwrap.dedent(extra)


BASE_KEYS = f"""
[[keys]]
id = "test"
key_sha256 = "{sha(TEST_KEY)}"
team = "team-a"
user = "alice"

[[keys]]
id = "other"
key_sha256 = "{sha(OTHER_KEY)}"
team = "team-b"
models = ["demo"]
"""


@dataclass
class Gateway:
    url: str
    app: web.Application
    config_path: Path

    @property
    def state(self) -> GatewayState:
        return self.app[STATE]

    @property
    def v1(self) -> str:
        return self.url + "/v1"


def write_config(tmp: Path, main: str, policies: dict[str, str] | None = None) -> Path:
    pol = tmp / "policies"
    pol.mkdir(parents=True, exist_ok=True)
    for name, text in {"keys.toml": BASE_KEYS, **(policies or {})}.items():
        (pol / name).write_text(textwrap.dedent(text))
    path = tmp / "gateway.toml"
    path.write_text(main)
    return path


def start_gateway(servers, tmp: Path, main: str, policies: dict[str, str] | None = None) -> Gateway:
    path = write_config(tmp, main, policies)
    app = build_app(load_config(str(path)))
    url = servers.serve(app)
    return Gateway(url=url, app=app, config_path=path)

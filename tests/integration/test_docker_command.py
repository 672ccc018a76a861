"""The Dockerfile cannot be built here (no engine), so test the exact command it runs, its config and
its health check, the way the image runs them: /etc/gateway laid out by the Dockerfile's own COPY lines,
non-root paths, a read-only tree, an admin key. The image ships no live demo key: its config serves
none, and the demo config that loads it must say allow_demo_key = true (else start-up is refused)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support.processes import GatewayProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKER = (ROOT / "Dockerfile").read_text()
ADMIN = "admin-secret-0123456789"
# A bare environment as in the image; PYTHONPATH so this checkout's gateway is the one that runs.
ENV = {"PATH": "/usr/bin:/bin", "GATEWAY_ADMIN_KEY": ADMIN, "PYTHONPATH": str(ROOT)}
DEMO = {"Authorization": "Bearer sk-gateway-demo"}


def cmd_argv() -> list[str]:
    cmd = re.search(r'^CMD (\[.*\])', DOCKER, re.M).group(1)
    return [a.strip().strip('"') for a in cmd.strip("[]").split(",")]


def image_layout(tmp_path: Path, port: int) -> Path:
    """/etc/gateway as the runtime stage's COPY lines build it (host paths made local, port made free)."""
    etc = tmp_path / "etc"
    runtime_stage = DOCKER.rsplit("\nFROM ", 1)[1]
    copies = re.findall(r"^COPY (\S+) /etc/gateway/(\S+)$", runtime_stage, re.M)
    assert copies, "the image copies its config into /etc/gateway"
    for src, dst in copies:
        (etc / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / src, etc / dst)
    for cfg in etc.glob("*.toml"):
        text = cfg.read_text().replace("/var/lib/gateway", str(tmp_path / "data"))
        cfg.write_text(re.sub(r"^port = 8080$", f"port = {port}", text, flags=re.M))
    for p in [etc, *etc.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    return etc


def start(tmp_path: Path, argv: list[str], port: int) -> GatewayProcess:
    gw = GatewayProcess.__new__(GatewayProcess)
    gw.port, gw.url, gw.log, gw._fh = port, f"http://127.0.0.1:{port}", None, None
    gw.proc = subprocess.Popen([sys.executable, "-m", "gateway", *argv[1:]], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=ENV)
    return gw


@pytest.fixture
def layout(tmp_path):
    port = free_port()
    etc = image_layout(tmp_path, port)
    yield etc, port
    for p in [etc, *etc.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def chat(url: str, headers: dict) -> int:
    req = urllib.request.Request(url + "/v1/chat/completions", headers={**headers, "Content-Type": "application/json"},
                                 data=b'{"model": "demo", "messages": [{"role": "user", "content": "hi"}]}')
    try:
        return urllib.request.urlopen(req, timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code


def test_docker_cmd_and_healthcheck_work_on_the_image_layout_without_a_demo_key(tmp_path, layout):
    etc, port = layout
    argv = cmd_argv()
    assert argv[:2] == ["gateway", "serve"]
    assert "--host" not in argv and "--port" not in argv, "the config's [server] host and port must hold"
    argv[argv.index("--config") + 1] = str(etc / "config.toml")
    gw = start(tmp_path, argv, port)
    try:
        gw._wait_ready()
        health = re.search(r'CMD \["python", "-c", "(.*)"\]\n', DOCKER.split("HEALTHCHECK", 1)[1]).group(1)
        ok = subprocess.run([sys.executable, "-c", health.replace("8080", str(port))], timeout=10)
        assert ok.returncode == 0
        req = urllib.request.Request(gw.url + "/stats", headers={"Authorization": f"Bearer {ADMIN}"})
        assert urllib.request.urlopen(req, timeout=5).status == 200
        try:
            urllib.request.urlopen(gw.url + "/stats", timeout=5)
            raise AssertionError("/stats must need the admin key")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        assert chat(gw.url, DEMO) == 401  # the published demo secret is no key of the image's config
    finally:
        gw.stop()


def test_the_images_demo_config_serves_the_demo_key_only_because_it_says_so(tmp_path, layout):
    etc, port = layout
    argv = ["gateway", "serve", "--config", str(etc / "demo.toml")]
    gw = start(tmp_path, argv, port)
    try:
        gw._wait_ready()
        assert chat(gw.url, DEMO) == 200
    finally:
        gw.stop()
    # The same file without the opt-in: refused before binding, with the reason.
    etc.chmod(0o755)
    bare = etc / "demo-no-opt-in.toml"
    bare.write_text(re.sub(r"^allow_demo_key = true$", "", (etc / "demo.toml").read_text(), flags=re.M))
    out = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(bare)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=30, env=ENV)
    assert out.returncode == 2 and "has the demo secret 'sk-gateway-demo'" in out.stderr, out.stderr


def grace_needed(config: Path) -> float:
    server = tomllib.loads(config.read_text())["server"]
    return server.get("unready_before_drain_s", 0) + server.get("drain_timeout_s", 20)


def test_documented_stop_timeouts_exceed_the_images_unready_and_drain_time():
    need = grace_needed(ROOT / "deploy/docker/config.toml")
    assert need > 10  # docker's default stop timeout would cut the drain, hence the documented ones
    stop = re.search(r"--stop-timeout (\d+)", DOCKER)
    assert stop and int(stop.group(1)) > need
    compose = yaml.safe_load((ROOT / "deploy/docker/compose.yaml").read_text())["services"]["gateway"]
    assert int(compose["stop_grace_period"].rstrip("s")) > need
    assert "VOLUME /var/lib/gateway" in DOCKER and "/var/lib/gateway" in compose["volumes"][0]

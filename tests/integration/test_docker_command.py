"""The Dockerfile cannot be built here (no engine), so test the exact command it runs, its config and
its health check, the way the image runs them: non-root paths, a read-only tree, an admin key."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.processes import GatewayProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_docker_cmd_and_healthcheck_work_on_the_image_layout(tmp_path):
    docker = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r'^CMD (\[.*\])', docker, re.M).group(1)
    argv = [a.strip().strip('"') for a in cmd.strip("[]").split(",")]
    assert argv[:2] == ["gateway", "serve"]
    # Lay out /etc/gateway as the image does, then make it read-only.
    etc = tmp_path / "etc"
    shutil.copytree(ROOT / "policies", etc / "policies")
    cfg = (ROOT / "deploy/docker/config.toml").read_text().replace("/var/lib/gateway", str(tmp_path / "data"))
    (etc / "config.toml").write_text(cfg)
    for p in [etc, *etc.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    port = free_port()
    args = argv[2:]
    args[args.index("--config") + 1] = str(etc / "config.toml")
    args[args.index("--port") + 1] = str(port)
    gw = GatewayProcess.__new__(GatewayProcess)
    gw.port, gw.url, gw.log, gw._fh = port, f"http://127.0.0.1:{port}", None, None
    gw.proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", *args], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={"PATH": "/usr/bin:/bin", "GATEWAY_ADMIN_KEY": "admin-secret-0123456789"})
    try:
        gw._wait_ready()
        health = re.search(r'CMD \["python", "-c", "(.*)"\]\n', docker.split("HEALTHCHECK", 1)[1]).group(1)
        ok = subprocess.run([sys.executable, "-c", health.replace("8080", str(port))], timeout=10)
        assert ok.returncode == 0
        req = urllib.request.Request(gw.url + "/stats", headers={"Authorization": "Bearer admin-secret-0123456789"})
        assert urllib.request.urlopen(req, timeout=5).status == 200
        try:
            urllib.request.urlopen(gw.url + "/stats", timeout=5)
            raise AssertionError("/stats must need the admin key")
        except urllib.error.HTTPError as e:
            assert e.code == 401
    finally:
        gw.stop()
        for p in [etc, *etc.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)

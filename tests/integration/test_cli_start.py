"""What a user sees when the gateway starts: one line saying where it serves, and no third-party INFO
noise (Presidio used to log each recognizer three times). And the README's first command leaves a
working `gateway` command behind."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.faults.procs import LoggedGateway

ROOT = Path(__file__).resolve().parents[2]


def test_a_start_says_where_it_serves_and_nothing_from_third_parties_at_info(tmp_path):
    gw = LoggedGateway(ROOT / "config.example.toml", tmp_path / "gw.log")  # the demo: Presidio-backed guardrails
    try:
        lines = gw.output().splitlines()
    finally:
        assert gw.stop() == 0
    serving = [ln for ln in lines if "serving on" in ln]
    assert len(serving) == 1 and f"serving on http://127.0.0.1:{gw.port} " in serving[0], lines
    noise = [ln for ln in lines if re.search(r" (INFO|DEBUG) (?!gateway)", ln)]
    assert noise == [], noise
    assert not [ln for ln in lines if "presidio" in ln.lower()], lines


def test_two_workers_each_say_where_they_serve(tmp_path):
    from tests.conftest_redis import RedisServer
    from tests.support.gateway import base_config, write_config

    server = RedisServer().start()
    try:
        cfg = write_config(tmp_path, base_config("http://127.0.0.1:9", extra=f'[store]\nurl = "{server.url}"\n'))
        gw = LoggedGateway(cfg, tmp_path / "gw.log", workers=2)
        try:
            import time

            deadline = time.monotonic() + 20
            while gw.output().count(f"serving on http://127.0.0.1:{gw.port} (pid") < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            out = gw.output()
        finally:
            gw.stop()
    finally:
        server.close()
    assert f"serving on http://127.0.0.1:{gw.port} with 2 workers" in out
    assert out.count(f"serving on http://127.0.0.1:{gw.port} (pid") == 2, out


def test_the_launcher_puts_a_working_gateway_command_in_local_bin(tmp_path):
    """What serve-demo.sh runs after installing: a `gateway` command the README's next line can use."""
    home = tmp_path / "home"
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["bash", str(ROOT / "scripts" / "install-launcher.sh")], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    link = home / ".local" / "bin" / "gateway"
    assert os.readlink(link) == str(ROOT / ".venv" / "bin" / "gateway")
    assert "not on your PATH" in out.stdout and 'export PATH="' in out.stdout
    on_path = subprocess.run(["bash", str(ROOT / "scripts" / "install-launcher.sh")], capture_output=True, text=True,
                             env={**env, "PATH": f"{link.parent}:/usr/bin:/bin"}, timeout=30)
    assert "gateway check-config" in on_path.stdout
    assert "bash scripts/install-launcher.sh" in (ROOT / "scripts" / "serve-demo.sh").read_text()
    if link.exists():  # a checkout with its .venv installed: the command runs
        assert subprocess.run([str(link), "--version"], capture_output=True, timeout=60).returncode == 0


def test_the_readme_quick_start_begins_with_serve_demo_and_says_how_to_reach_the_command():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert quick.split("```bash\n", 1)[1].startswith("bash scripts/serve-demo.sh")
    assert "~/.local/bin" in quick and ".venv/bin/gateway" in quick

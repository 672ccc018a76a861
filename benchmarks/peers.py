"""Peer rows for benchmarks/bench.py: another gateway, against the same canned upstream in the same run.

LiteLLM proxy lives in its own virtual environment, so none of its dependencies touch the project's:

    python3 -m venv .peers/litellm && .peers/litellm/bin/pip install 'litellm[proxy]==1.108.7'

Never install 1.107.0: that release was compromised (start_litellm refuses it). bench.py looks for the
executable at $LITELLM_BIN, then .peers/litellm/bin/litellm. LiteLLM runs offline: one model routed to the
upstream, the benchmark key as its master key, no database, no callbacks, telemetry vetoed and every
remote table (model prices, beta headers, presets) read from the copy shipped in the package.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

LITELLM_PIN = "1.108.7"
LITELLM_BAD = {"1.107.0"}
LITELLM_INSTALL = f"python3 -m venv .peers/litellm && .peers/litellm/bin/pip install 'litellm[proxy]=={LITELLM_PIN}'"
LITELLM_ENV = {
    "LITELLM_LOG": "ERROR",  # also turns uvicorn's per-request access log off
    "LITELLM_MODE": "PRODUCTION",  # no .env loading
    "LITELLM_TELEMETRY": "False",
    "LITELLM_TELEMETRY_DISABLED": "true",
    "DISABLE_SCHEMA_UPDATE": "true",
    "DISABLE_ADMIN_UI": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
# Inherited settings that would give it a database, a cache or a place to send logs.
LITELLM_UNSET = ("DATABASE_URL", "DIRECT_URL", "REDIS_URL", "REDIS_HOST", "LITELLM_LICENSE")


def litellm_bin(root: Path) -> Path | None:
    for cand in (os.environ.get("LITELLM_BIN"), root / ".peers" / "litellm" / "bin" / "litellm"):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return Path(cand)
    return None


def litellm_version(exe: Path) -> str:
    """Read from the package metadata by the peer's own interpreter, without importing litellm (slow)."""
    py = exe.parent / "python"
    out = subprocess.run([str(py), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip() or "unknown"


def litellm_config(tmp: Path, upstream: str, key: str) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "litellm.yaml"
    path.write_text(f"""model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench-model
      api_base: {upstream}/v1
      api_key: sk-upstream-unused
general_settings:
  master_key: {key}
litellm_settings:
  telemetry: false
""")
    return path


def start_litellm(exe: Path, tmp: Path, upstream: str, key: str, port: int, preexec: Callable[[], None],
                  timeout: float = 90) -> tuple[subprocess.Popen, str]:
    """Start the proxy (one uvicorn worker), wait until a chat completion through it succeeds; (process, version)."""
    version = litellm_version(exe)
    if version in LITELLM_BAD:
        raise RuntimeError(f"{exe}: litellm {version} is a compromised release; reinstall with: {LITELLM_INSTALL}")
    cfg = litellm_config(tmp, upstream, key)
    env = {k: v for k, v in os.environ.items() if k not in LITELLM_UNSET} | LITELLM_ENV
    log = open(tmp / "litellm.log", "wb")
    p = subprocess.Popen([str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
                          "--num_workers", "1"], stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec, env=env,
                         cwd=tmp)
    log.close()
    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.time() + timeout
    last = ""
    while time.time() < deadline:
        if p.poll() is not None:
            break
        try:
            with direct.open(req, timeout=5) as r:
                if r.status == 200:
                    return p, version
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.5)
    p.terminate()
    p.wait(10)
    tail = (tmp / "litellm.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"LiteLLM did not serve on {port} within {timeout:g}s ({last}); log tail:\n{tail}")

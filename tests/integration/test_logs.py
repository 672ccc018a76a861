"""The operational log of a real `gateway serve` process: JSON lines on stderr (stderr is a file here,
not a terminal) with the keys docs/operations.md documents; plain text on request; no third-party
INFO lines."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import openai
import orjson
import pytest

from tests.support.fake_upstream import Reply
from tests.support.gateway import OTHER_KEY, TEST_KEY, UPSTREAM_SECRET, base_config, write_config
from tests.support.processes import GatewayProcess

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("time", "level", "logger", "message", "pid")  # every line (docs/operations.md, "Logs")
FLAKY = """
[models.flaky]
targets = [{ provider = "up", model = "flaky-1" }]
max_attempts = 1
breaker_failures = 1
breaker_cooldown_s = 60
"""


def json_lines(text: str) -> list[dict]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    out = []
    for ln in lines:
        obj = orjson.loads(ln)  # raises on any line that is not one JSON object
        assert isinstance(obj, dict) and all(k in obj for k in KEYS), ln
        out.append(obj)
    return out


def wait_for(gw: GatewayProcess, event: str, n: int = 1, timeout: float = 15) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [x for x in json_lines(gw.output()) if x.get("event") == event]
        if len(found) >= n:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {event!r} line in:\n{gw.output()}")


def no_library_noise(lines: list[dict]) -> None:
    noise = [x for x in lines if not x["logger"].startswith("gateway") and x["level"] in ("info", "debug")]
    assert noise == [], noise


def test_the_demo_starts_with_one_json_line_saying_where_and_no_library_noise(tmp_path):
    gw = GatewayProcess(ROOT / "config.example.toml", log=tmp_path / "gw.log")  # Presidio-backed guardrails
    try:
        start = wait_for(gw, "startup")
    finally:
        assert gw.stop() == 0
    lines = json_lines(gw.output())
    assert len(start) == 1 and start[0]["address"] == gw.url and start[0]["level"] == "info"
    assert start[0]["logger"] == "gateway.server" and isinstance(start[0]["pid"], int)
    no_library_noise(lines)
    assert not [x for x in lines if "presidio" in x["message"].lower()], lines
    assert [x["phase"] for x in lines if x.get("event") == "drain"] == ["unready", "draining"]


def test_reloads_upstream_failures_and_breakers_are_logged_as_json(tmp_path, upstream):
    cfg = write_config(tmp_path, base_config(upstream.url, extra=FLAKY))
    gw = GatewayProcess(cfg, log=tmp_path / "gw.log")
    try:
        wait_for(gw, "startup")
        gw.signal(signal.SIGHUP)
        ok = wait_for(gw, "reload")[0]
        assert ok["generation"] == 1 and ok["level"] == "info"
        good = cfg.read_text()
        cfg.write_text(good + "\n[server\n")  # not TOML
        gw.signal(signal.SIGHUP)
        bad = wait_for(gw, "reload_failed")[0]
        assert bad["level"] == "error" and "valid TOML" in bad["reason"] and bad["generation"] == 1
        cfg.write_text(good)

        upstream.push(Reply(status=503, body=b'{"error": {"message": "overloaded", "type": "server_error"}}'))
        c = openai.OpenAI(base_url=gw.url + "/v1", api_key=TEST_KEY, max_retries=0)
        with pytest.raises(openai.APIStatusError):
            c.chat.completions.create(model="flaky", messages=[{"role": "user", "content": "hi"}])
        failure = wait_for(gw, "upstream_failure")[0]
        assert failure["target"] == "up/flaky-1" and failure["reason"] and failure["upstream_status"] == 503
        assert failure["request_id"].startswith("req_") and failure["level"] == "warning"
        opened = wait_for(gw, "breaker_opened")[0]
        assert opened["target"] == "up/flaky-1"
    finally:
        assert gw.stop() == 0
    lines = json_lines(gw.output())  # every line, the shutdown's included
    no_library_noise(lines)
    assert UPSTREAM_SECRET not in gw.output()


def test_log_format_text_on_request(tmp_path, upstream):
    cfg = write_config(tmp_path, base_config(upstream.url, extra='\n[logs]\nformat = "json"\n'))
    gw = GatewayProcess(cfg, log=tmp_path / "gw.log", env={"GATEWAY_LOG_FORMAT": "text"})  # the environment wins
    try:
        deadline = time.time() + 15
        while "serving on" not in gw.output() and time.time() < deadline:
            time.sleep(0.1)
    finally:
        gw.stop()
    line = next(ln for ln in gw.output().splitlines() if "serving on" in ln)
    assert not line.startswith("{") and f" INFO gateway.server serving on {gw.url} (pid" in line


def test_a_store_outage_logs_its_start_and_its_end(tmp_path, upstream):
    from tests.conftest_redis import RedisServer

    redis = RedisServer().start()
    cfg = write_config(tmp_path, base_config(upstream.url, extra=f'\n[store]\nurl = "{redis.url}"\n'))
    gw = GatewayProcess(cfg, log=tmp_path / "gw.log")
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=TEST_KEY, max_retries=0)
    try:
        wait_for(gw, "startup")
        c.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}])
        redis.stop()
        time.sleep(1.1)  # past the revocation cache's one-second answer
        # A key the store has not answered for yet: on_store_error = "closed" refuses it with 503.
        other = openai.OpenAI(base_url=gw.url + "/v1", api_key=OTHER_KEY, max_retries=0)
        with pytest.raises(openai.APIStatusError) as refused:
            other.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}])
        assert refused.value.status_code == 503
        down = wait_for(gw, "store_unavailable")[0]
        assert down["level"] == "warning" and down["reason"]
        redis = RedisServer(port=redis.port).start()
        for _ in range(40):  # the first queries after the restart may still meet the dead connection
            time.sleep(0.25)
            if _ok(other):  # the store answered for this key: the outage is over
                break
        wait_for(gw, "store_recovered")
    finally:
        gw.stop()
        redis.stop()
    no_library_noise(json_lines(gw.output()))


def _ok(client: openai.OpenAI) -> bool:
    try:
        client.models.list()
        return True
    except openai.APIStatusError:
        return False


def test_plain_text_when_stderr_is_a_terminal(tmp_path, upstream):
    import os
    import pty
    import select
    import subprocess
    import sys

    from tests.support.processes import free_port

    cfg = write_config(tmp_path, base_config(upstream.url))
    port = free_port()
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_LOG_FORMAT"}
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", str(cfg), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=follower, env=env)
    os.close(follower)
    out = b""
    try:
        deadline = time.time() + 20
        while b"serving on" not in out and time.time() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                out += os.read(leader, 4096)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        os.close(leader)
    line = next(ln for ln in out.decode().splitlines() if "serving on" in ln)
    assert not line.lstrip().startswith("{") and f"INFO gateway.server serving on http://127.0.0.1:{port} (pid" in line

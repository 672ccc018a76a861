"""On SIGTERM the gateway first turns unready (/health/ready 503, /health "draining") while it still
serves for `unready_before_drain_s`, so a balancer that health-checks stops sending before the listener
closes; then it drains and exits 0."""

from __future__ import annotations

import signal
import time

import httpx

from tests.faults.procs import LoggedGateway
from tests.faults.wire import AUTH, MSGS
from tests.support.fake_upstream import Reply, transcript
from tests.support.gateway import base_config, write_config


def test_sigterm_turns_readiness_off_while_still_serving_then_drains(tmp_path, upstream):
    cfg = write_config(tmp_path, base_config(upstream.url, server="unready_before_drain_s = 2\ndrain_timeout_s = 5"))
    gw = LoggedGateway(cfg, tmp_path / "gateway.log")
    try:
        assert httpx.get(gw.url + "/health/ready").status_code == 200
        gw.proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        deadline = sent + 1.5
        while (r := httpx.get(gw.url + "/health/ready")).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert r.status_code == 503 and r.json()["status"] == "not_ready"
        assert httpx.get(gw.url + "/health").json()["status"] == "draining"
        # A request arriving in the unready window is still served in full (new connection, not refused).
        upstream.push(Reply(sse=transcript("openai_stream_text.sse")))
        body = {"model": "gpt", "messages": MSGS, "stream": True}
        assert httpx.post(gw.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=10).status_code == 200
        assert time.monotonic() - sent < 2  # all of the above happened inside the window
        assert gw.proc.wait(15) == 0
        assert time.monotonic() - sent >= 2  # it waited out the window before closing
    finally:
        gw.stop()

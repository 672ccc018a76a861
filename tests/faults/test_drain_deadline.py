"""A stream still running when `drain_timeout_s` runs out is cut by the server: its record says so
(`server.drain_deadline`, status 503), not that the client went away."""

from __future__ import annotations

import signal
import threading

import httpx

from tests.faults.procs import LoggedGateway
from tests.faults.wire import AUTH, MSGS, records
from tests.support.fake_upstream import Reply, transcript
from tests.support.gateway import base_config, write_config


def test_a_stream_cut_at_the_drain_deadline_is_recorded_as_the_servers_doing(tmp_path, upstream):
    main = base_config(upstream.url, server="drain_timeout_s = 1\nidle_timeout_s = 5") + """
[audit]
flush_interval_ms = 2
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
"""
    cfg = write_config(tmp_path, main)
    gw = LoggedGateway(cfg, tmp_path / "gateway.log")
    try:
        upstream.push(Reply(sse=transcript("openai_stream_text.sse"), event_delay=2.0))  # far past the deadline
        started = threading.Event()
        seen: dict = {}

        def stream() -> None:
            body = {"model": "gpt", "messages": MSGS, "stream": True}
            try:
                with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=20) as r:
                    seen["id"] = r.headers["x-request-id"]
                    it = r.iter_raw()
                    next(it)
                    started.set()
                    for _ in it:
                        pass
            except httpx.HTTPError:
                pass  # the cut
            started.set()

        t = threading.Thread(target=stream)
        t.start()
        assert started.wait(15)
        gw.proc.send_signal(signal.SIGTERM)
        t.join(20)
        assert gw.proc.wait(20) == 0
        rec = records(cfg.parent / "audit" / "records.jsonl", 1)[-1]
        assert rec["request_id"] == seen["id"]
        reasons_ = [d["reason"] for d in rec["decisions"]]
        assert "server.drain_deadline" in reasons_ and "client.disconnected" not in reasons_, rec
        assert rec["status"] == 503 and rec["client_disconnected"] is False
    finally:
        gw.stop()

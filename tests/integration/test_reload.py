"""Hot reload: a valid change takes effect without dropping a stream in flight, an invalid one is refused
and the old policy keeps applying; SIGHUP and file watching on a real `gateway serve`; check-config
--against shows what a reload would change."""

from __future__ import annotations

import dataclasses
import json
import signal
import textwrap
import threading
import time
import urllib.error
import urllib.request

import openai
import pytest

from gateway import cli
from gateway.http.server import reload_config
from tests.support.gateway import TEST_KEY, base_config, write_config
from tests.support.processes import GatewayProcess

MSGS = [{"role": "user", "content": "one two three four five six seven eight nine ten"}]

SLOW = """
[providers.slow]
type = "mock"
chunks = 10
chunk_delay_ms = 150

[models.slow]
targets = [{ provider = "slow", model = "mock-slow" }]
"""

NEW_ALIAS = """
[models.fresh]
targets = [{ provider = "mock", model = "mock-2" }]
"""

RPM_2 = """
[[rate_limits]]
id = "key-rpm"
scope = "key"
rpm = 2
"""


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=TEST_KEY, max_retries=0)


def test_valid_reload_keeps_the_stream_in_flight_and_applies_to_new_requests(make_gateway, upstream, servers):
    gw = make_gateway(extra=SLOW)
    c = client(gw.url)
    chunks: list[str] = []
    finish: list[str | None] = []
    first = threading.Event()

    def consume() -> None:
        with c.chat.completions.create(model="slow", messages=MSGS, stream=True) as stream:
            for ev in stream:
                if ev.choices:
                    chunks.append(ev.choices[0].delta.content or "")
                    if ev.choices[0].finish_reason:
                        finish.append(ev.choices[0].finish_reason)
                first.set()

    t = threading.Thread(target=consume)
    t.start()
    assert first.wait(5)
    gw.config_path.write_text(base_config(upstream.url, SLOW + NEW_ALIAS))
    (gw.config_path.parent / "policies" / "limits.toml").write_text(textwrap.dedent(RPM_2))
    assert servers.run(reload_config(gw.app)) is True
    assert gw.state.runtime.generation == 1
    assert t.is_alive(), "the stream was still running when the config was swapped"
    t.join(10)
    assert "".join(chunks).split() == MSGS[0]["content"].split(), "the stream finished completely"
    assert finish == ["stop"]
    # New requests see the new config: the new alias, and the new limit (the stream started before it).
    assert c.chat.completions.create(model="fresh", messages=MSGS).model
    c.chat.completions.create(model="demo", messages=MSGS)
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="demo", messages=MSGS)


def test_invalid_reload_is_refused_and_the_old_policy_still_applies(make_gateway, upstream, servers):
    gw = make_gateway(policies={"limits.toml": RPM_2})
    c = client(gw.url)
    c.chat.completions.create(model="demo", messages=MSGS)
    limits = gw.config_path.parent / "policies" / "limits.toml"
    limits.write_text(textwrap.dedent(RPM_2).replace("rpm = 2", "rpm = 2\nburst = 5"))
    assert servers.run(reload_config(gw.app)) is False
    state = gw.state
    assert state.runtime.generation == 0 and state.reload_errors == 1
    assert "limits.toml" in state.last_reload_error and "burst" in state.last_reload_error
    c.chat.completions.create(model="demo", messages=MSGS)
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="demo", messages=MSGS)
    # An alias that only the refused file would have brought is still unknown.
    gw.config_path.write_text(base_config(upstream.url, NEW_ALIAS + "\n[server2]\n"))
    assert servers.run(reload_config(gw.app)) is False
    assert "fresh" not in gw.state.runtime.router.routes


def _stats(url: str) -> dict:
    with urllib.request.urlopen(url + "/stats", timeout=5) as r:
        return json.loads(r.read())


def _wait_generation(url: str, want: int, timeout: float = 15) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        cfg = _stats(url)["config"]
        if cfg["generation"] >= want or cfg["reload_errors"]:
            return cfg
        time.sleep(0.1)
    raise AssertionError(f"generation {want} not reached: {cfg}")


def test_sighup_reloads_a_real_gateway_process(tmp_path, upstream):
    path = write_config(tmp_path, base_config(upstream.url))
    gw = GatewayProcess(path)
    try:
        with pytest.raises(openai.NotFoundError):
            client(gw.url).chat.completions.create(model="fresh", messages=MSGS)
        path.write_text(base_config(upstream.url, NEW_ALIAS))
        gw.signal(signal.SIGHUP)
        assert _wait_generation(gw.url, 1) == {"generation": 1, "reloads": 1, "reload_errors": 0}
        assert client(gw.url).chat.completions.create(model="fresh", messages=MSGS).choices
        path.write_text("not = [valid")
        gw.signal(signal.SIGHUP)
        assert _wait_generation(gw.url, 2)["reload_errors"] == 1
        assert client(gw.url).chat.completions.create(model="fresh", messages=MSGS).choices
    finally:
        assert gw.stop() == 0


def test_watch_config_reloads_when_a_policy_file_changes(tmp_path, upstream):
    path = write_config(tmp_path, base_config(upstream.url, server="watch_config = true"))
    gw = GatewayProcess(path)
    try:
        client(gw.url).chat.completions.create(model="demo", messages=MSGS)
        (tmp_path / "policies" / "limits.toml").write_text(textwrap.dedent(RPM_2))  # a new file matching the glob
        assert _wait_generation(gw.url, 1)["reload_errors"] == 0
        c = client(gw.url)
        c.chat.completions.create(model="demo", messages=MSGS)
        c.chat.completions.create(model="demo", messages=MSGS)
        with pytest.raises(openai.RateLimitError):
            c.chat.completions.create(model="demo", messages=MSGS)
    finally:
        assert gw.stop() == 0


def test_check_config_against_a_running_gateway_prints_the_diff(make_gateway, upstream, monkeypatch, capsys):
    monkeypatch.setenv("TEST_ADMIN_KEY", "admin-secret-123")
    admin = '\n[admin]\nkey_env = "TEST_ADMIN_KEY"\n'
    gw = make_gateway(extra=admin, policies={"limits.toml": RPM_2})
    req = urllib.request.Request(gw.url + "/admin/config")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 401, "the admin endpoint needs the admin key"
    req.add_header("x-admin-key", "admin-secret-123")
    with urllib.request.urlopen(req, timeout=5) as r:
        summary = json.loads(r.read())
    assert summary["generation"] == 0 and "demo" in summary["routes"]
    assert summary["providers"]["up"] == {"type": "openai", "base_url": upstream.url + "/v1",
                                          "api_key_env": "TEST_UPSTREAM_KEY"}
    assert set(summary["policies"]["rate_limits"]) == {"key-rpm"}
    assert "SECRET" not in json.dumps(summary)

    assert cli.main(["check-config", "--config", str(gw.config_path), "--against", gw.url]) == 0
    out = capsys.readouterr().out
    assert "no differences" in out
    gw.config_path.write_text(base_config(upstream.url, admin + NEW_ALIAS, server="max_in_flight = 7"))
    (gw.config_path.parent / "policies" / "limits.toml").write_text(textwrap.dedent(RPM_2).replace("rpm = 2", "rpm = 5"))
    (gw.config_path.parent / "policies" / "more.toml").write_text('[[rate_limits]]\nid = "team-rps"\nscope = "team"\nrps = 3\n')
    assert cli.main(["check-config", "--config", str(gw.config_path), "--against", gw.url]) == 0
    out = capsys.readouterr().out
    diff = [line.strip() for line in out.splitlines() if line.startswith("  ") and line.strip()[:2] in ("+ ", "- ", "~ ")]
    assert "6 differences" in out, out
    assert '+ routes.fresh.targets = ["mock/mock-2 weight=1"]' in diff
    assert any(line.startswith("~ server.max_in_flight: 1024 -> 7") for line in diff)
    assert any(line.startswith("~ policies.rate_limits.key-rpm: ") for line in diff)
    assert any(line.startswith("+ policies.rate_limits.team-rps = ") for line in diff)
    monkeypatch.setenv("WRONG_ADMIN_KEY", "not-the-key")
    assert cli.main(["check-config", "--config", str(gw.config_path), "--against", gw.url,
                     "--admin-key-env", "WRONG_ADMIN_KEY"]) == 1
    assert "401" in capsys.readouterr().err


DEMO_TARGET = 'targets = [{ provider = "mock", model = "mock-1" }]'


def _demo_breaker(failures: int) -> str:
    return f"{DEMO_TARGET}\nbreaker_failures = {failures}"


async def _fail(breaker, times: int) -> None:  # on the gateway's loop, as the router would
    for _ in range(times):
        breaker.record_failure()


def test_reload_never_changes_serving_breakers_and_carries_them_over_per_target(make_gateway, upstream, servers):
    gw = make_gateway(main=base_config(upstream.url).replace(DEMO_TARGET, _demo_breaker(3)))
    before = gw.state.runtime
    breaker = before.router.breakers["mock/mock-1"]
    servers.run(_fail(breaker, 3))
    assert breaker.state == "open" and breaker.opened_count == 1
    # Refused: new breaker settings in a valid main file, and a limits file that only fails to compile
    # after the router was built. The serving breaker keeps its settings and its state.
    gw.config_path.write_text(base_config(upstream.url).replace(DEMO_TARGET, _demo_breaker(1)))
    (gw.config_path.parent / "policies" / "limits.toml").write_text(
        textwrap.dedent(RPM_2).replace("rpm = 2", "rpm = 2\nburst = 5"))
    assert servers.run(reload_config(gw.app)) is False
    assert gw.state.runtime is before and before.router.breakers["mock/mock-1"] is breaker
    assert (breaker.failure_threshold, breaker.cooldown_s, breaker.state) == (3, 30.0, "open")
    # Accepted, same settings for the target: the very same breaker, still open.
    gw.config_path.write_text(base_config(upstream.url, NEW_ALIAS).replace(DEMO_TARGET, _demo_breaker(3)))
    (gw.config_path.parent / "policies" / "limits.toml").unlink()
    assert servers.run(reload_config(gw.app)) is True
    after = gw.state.runtime
    assert after is not before and after.router.breakers["mock/mock-1"] is breaker and breaker.state == "open"
    assert before.router.breakers["mock/mock-1"] is breaker  # the old snapshot was not touched either
    # Accepted, new settings for the target: a fresh breaker with them (documented in Router.compile).
    gw.config_path.write_text(base_config(upstream.url).replace(DEMO_TARGET, _demo_breaker(1)))
    assert servers.run(reload_config(gw.app)) is True
    fresh = gw.state.runtime.router.breakers["mock/mock-1"]
    assert fresh is not breaker and (fresh.failure_threshold, fresh.state) == (1, "closed")
    assert (breaker.failure_threshold, breaker.state) == (3, "open")


def test_runtime_is_frozen_and_providers_get_their_transport_at_construction(make_gateway, upstream, servers):
    gw = make_gateway()
    rt = gw.state.runtime
    with pytest.raises(dataclasses.FrozenInstanceError):
        rt.limits = None  # type: ignore[misc]  # the point of the test: assignment is refused
    assert rt.providers and all(p.transport is rt.services.upstreams for p in rt.providers.values())
    gw.config_path.write_text(base_config(upstream.url, NEW_ALIAS))
    assert servers.run(reload_config(gw.app)) is True
    new = gw.state.runtime
    assert all(p.transport is rt.services.upstreams for p in new.providers.values())

"""Fixtures shared by the suite: servers on loopback, the fake upstream, the gateway, Redis, and a
guard that fails any test in which gateway code blocks its event loop."""

from __future__ import annotations

import os

import pytest
from blockbuster import blockbuster_ctx
from hypothesis import settings

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import UPSTREAM_SECRET, base_config, start_gateway
from tests.support.servers import LoopThread

# Property tests explore new examples on every developer run (and keep the failures they find in
# .hypothesis/); CI (CI=true) runs a fixed, derandomised set so a submission's result does not depend on
# the draw. Either way each test's own settings (example counts, deadlines) apply.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def no_blocking_calls():
    """Blocking calls (file or socket I/O, time.sleep, ...) made by gateway code on a running event
    loop raise BlockingError, which fails the request and so the test."""
    with blockbuster_ctx(scanned_modules=["gateway"]) as bb:
        # The one write allowed on the loop: a request record's page-cache write to the audit spool,
        # which must have returned before the response's last byte (docs/records.md).
        bb.functions["os.write"].can_block_in("gateway/records/spool.py", "append")
        yield bb


@pytest.fixture(scope="session")
def servers():
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture
def upstream(servers):
    fake = FakeUpstream()
    fake.url = servers.serve(fake.app())
    yield fake
    servers.stop_app(fake.url)


@pytest.fixture(autouse=True)
def upstream_key(monkeypatch):
    monkeypatch.setenv("TEST_UPSTREAM_KEY", UPSTREAM_SECRET)


@pytest.fixture
def gateway(servers, upstream, tmp_path):
    gw = start_gateway(servers, tmp_path, base_config(upstream.url))
    yield gw
    servers.stop_app(gw.url)


@pytest.fixture
def make_gateway(servers, upstream, tmp_path):
    """Start a gateway with extra config text and policy files: make_gateway(extra=..., policies={...})."""
    started = []

    def make(extra: str = "", policies: dict[str, str] | None = None, main: str | None = None, server: str = ""):
        sub = tmp_path / f"gw{len(started)}"
        gw = start_gateway(servers, sub, main if main is not None else base_config(upstream.url, extra, server),
                           policies)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        servers.stop_app(gw.url)


from tests.conftest_redis import redis_server, redis_url  # noqa: E402,F401  (shared fixtures)


@pytest.fixture(params=["memory", "redis"])
def store_url(request):
    """The same integration test body against both stores."""
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")

"""The gateway on a three-master Redis Cluster (`[store] url = "redis://...?cluster=1"`): limits stay
exact under a concurrent burst, every script touches one slot (no CROSSSLOT), and the audit stream
sink writes to the cluster exactly once per request."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import orjson
import redis

from gateway.store.base import hash_tag
from tests.faults.wire import AUTH, MSGS, by_request_id
from tests.support.gateway import TEST_KEY

POLICIES = {"limits.toml": """
[[rate_limits]]
id = "key-rpm"
scope = "key"
rpm = 20

[[rate_limits]]
id = "team-tpm"
scope = "team"
tpm = 10000000

[[budgets]]
id = "team-usd"
scope = "team"
usd = 1000.0
window = "day"
"""}


def extra(url: str) -> str:
    # The USD budget covers `demo` (mock/mock-1), which a USD budget can only count with a price.
    return f"""
[pricing."mock-1"]
input = 1.0
output = 2.0

[store]
url = "{url}"

[audit]
flush_interval_ms = 2
[[audit.sinks]]
type = "redis"
"""


async def burst(url: str, n: int) -> list[tuple[int, str, bytes]]:
    body = {"model": "demo", "messages": MSGS}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async def one():
            async with s.post(url + "/v1/chat/completions", json=body, headers=AUTH) as r:
                return r.status, r.headers["x-request-id"], await r.read()
        return await asyncio.gather(*(one() for _ in range(n)))


def stream_records(cluster, stream: str = "gateway:audit") -> list[dict]:
    client = redis.RedisCluster.from_url(cluster.url.replace("?cluster=1", ""))
    try:
        return [orjson.loads(v[b"r"]) for _, v in client.xrange(stream)]
    finally:
        client.close()


def test_limits_stay_exact_on_a_cluster_and_no_script_crosses_slots(make_gateway, redis_cluster, caplog):
    gw = make_gateway(extra=extra(redis_cluster.url), policies=POLICIES)
    caplog.set_level(logging.WARNING)
    results = asyncio.run(burst(gw.url, 60))
    statuses = sorted(s for s, _, _ in results)
    assert statuses.count(200) == 20 and statuses.count(429) == 40, statuses
    assert "CROSSSLOT" not in caplog.text and "store failed" not in caplog.text
    assert all(b"store_unavailable" not in body for _, _, body in results)
    # Every key a rule or budget made carries a hash tag, so each script's keys share one slot.
    gw_keys = [k for k in redis_cluster.keys() if k.startswith("gw:")]
    assert gw_keys and all(hash_tag(k) != k for k in gw_keys), gw_keys
    # The audit sink on the cluster: one record per request, none lost or doubled.
    ids = [rid for _, rid, _ in results]
    until = time.time() + 15
    while time.time() < until:
        counts = by_request_id([r for r in stream_records(redis_cluster) if r.get("type") == "request"])
        if all(i in counts for i in ids):
            break
        time.sleep(0.1)
    assert {i: counts.get(i, 0) for i in ids} == {i: 1 for i in ids}
    assert "audit sink redis failed" not in caplog.text

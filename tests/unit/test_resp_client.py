"""The hot path's multiplexed RESP client against a real redis-server."""

from __future__ import annotations

import asyncio

import hiredis
import pytest

from gateway.store.resp import RespClient, RespError, pack
from tests.conftest_redis import RedisServer


async def _answers_ping_again(client: RespClient, failure: str) -> None:
    """Redis is back: the client answers PING again within ~2.5 s (it reconnects after a short back-off)."""
    for _ in range(50):
        try:
            assert await client.pipeline([("PING",)]) == [b"PONG"]
            return
        except RespError:
            await asyncio.sleep(0.05)
    raise AssertionError(failure)


def test_pack_is_resp_arrays_of_bulk_strings():
    assert pack(("SET", "k", 12)) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n"


async def test_concurrent_pipelines_each_get_their_own_replies_in_order():
    server = await asyncio.to_thread(lambda: RedisServer().start())
    try:
        client = RespClient(server.url)

        async def one(i: int) -> list:
            return await client.pipeline([("SET", f"k{i}", i), ("INCRBY", f"k{i}", 1), ("GET", f"k{i}")])

        results = await asyncio.gather(*(one(i) for i in range(200)))
        assert all(r == [b"OK", i + 1, str(i + 1).encode()] for i, r in enumerate(results))
        err = (await client.pipeline([("INCR", "k-str"), ("SET", "k-str", "x"), ("INCR", "k-str")]))[2]
        assert isinstance(err, hiredis.ReplyError)
        await client.close()
    finally:
        await asyncio.to_thread(server.close)


async def test_a_dead_server_fails_fast_and_the_client_reconnects_when_it_returns():
    server = await asyncio.to_thread(lambda: RedisServer().start())
    try:
        client = RespClient(server.url, socket_timeout=0.5)
        assert await client.pipeline([("PING",)]) == [b"PONG"]
        await asyncio.to_thread(server.stop)
        with pytest.raises(RespError):
            await client.pipeline([("PING",)])
        await asyncio.to_thread(server.start)
        await _answers_ping_again(client, "the client did not reconnect")
        await client.close()
    finally:
        await asyncio.to_thread(server.close)


async def test_a_stalled_server_times_out_every_waiting_pipeline_and_the_client_recovers():
    # One watchdog per connection bounds every pending command (no timer per command): a paused
    # Redis must still fail all waiters within about 1.25 socket timeouts, then work once resumed.
    import os
    import signal
    import time

    server = await asyncio.to_thread(lambda: RedisServer().start())
    try:
        client = RespClient(server.url, socket_timeout=0.2)
        assert await client.pipeline([("PING",)]) == [b"PONG"]
        os.kill(server._proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            results = await asyncio.gather(*(client.pipeline([("PING",)]) for _ in range(5)), return_exceptions=True)
            waited = time.monotonic() - t0
        finally:
            os.kill(server._proc.pid, signal.SIGCONT)
        assert all(isinstance(r, RespError) for r in results), results
        assert 0.15 < waited < 1.0, waited
        await _answers_ping_again(client, "the client did not recover after the stall")
        await client.close()
    finally:
        await asyncio.to_thread(server.close)

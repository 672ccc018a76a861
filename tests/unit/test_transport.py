"""The providers' HTTP client against raw socket servers that write exact bytes on the wire."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest
import yarl

from gateway.providers.response import HIGH_WATER, TransportError
from gateway.providers.transport import Upstreams


class Wire:
    """A TCP server answering each request with the next scripted bytes (or a callable on the writer)."""

    def __init__(self, *answers, ssl=None, host: str = "127.0.0.1") -> None:
        self.ssl = ssl
        self.host = host
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Wire:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> yarl.URL:
        port = self.server.sockets[0].getsockname()[1]
        scheme = "https" if self.ssl else "http"
        return yarl.URL(f"{scheme}://{self.host}:{port}/v1/chat/completions")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answers.pop(0)
                if callable(answer):
                    if await answer(writer) == "close":
                        break
                else:
                    writer.write(answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed.set()
            writer.close()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def post(up: Upstreams, url: yarl.URL, body: bytes = b'{"x":1}', headers=None):
    return await up.post(url, headers or {"content-type": "application/json"}, body, connect_timeout=1.0)


async def test_content_length_response_and_keep_alive_reuses_one_connection():
    async with Wire(ok(b'{"a":1}'), ok(b'{"b":2}')) as wire:
        up = Upstreams()
        r1 = await post(up, wire.url, headers={"content-type": "application/json", "x-request-id": "r1"})
        assert r1.status == 200 and r1.headers["content-type"] == "application/json"
        assert await r1.read() == b'{"a":1}'
        r1.close()
        r2 = await post(up, wire.url)
        assert await r2.read() == b'{"b":2}'
        assert wire.connections == 1
        first = wire.requests[0]
        assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:")
        assert b"x-request-id: r1\r\n" in first and b"Content-Length: 7\r\n\r\n{\"x\":1}" in first
        await up.close()


async def test_chunked_body_streams_in_pieces_and_a_slow_consumer_gets_every_byte_in_order():
    pieces = [b"data: %d\n\n" % i * 2000 for i in range(80)]  # ~1.5 MB, well past the high-water mark

    async def chunked(writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for p in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(p), p))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    assert sum(map(len, pieces)) > 4 * HIGH_WATER
    async with Wire(chunked, ok(b"{}")) as wire:
        up = Upstreams()
        resp = await post(up, wire.url)
        got = []
        paused = False
        async for chunk in resp.iter_chunks():
            got.append(chunk)
            await asyncio.sleep(0.001)
            paused = paused or (resp._conn is not None and resp._conn.paused)
        assert b"".join(got) == b"".join(pieces)
        assert paused, "the socket was never paused for the slow consumer"
        resp.close()
        assert await (await post(up, wire.url)).read() == b"{}"  # the connection went back whole
        assert wire.connections == 1
        await up.close()


async def test_body_until_close_and_gzip_and_deflate_are_decoded():
    payload = b'{"text":"' + b"hello " * 500 + b'"}'

    async def until_close(writer):
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + payload)
        await writer.drain()
        return "close"

    async with Wire(until_close, ok(gzip.compress(payload), b"Content-Encoding: gzip\r\n"),
                    ok(zlib.compress(payload), b"Content-Encoding: deflate\r\n")) as wire:
        up = Upstreams()
        assert await (await post(up, wire.url)).read() == payload
        assert await (await post(up, wire.url)).read() == payload
        assert await (await post(up, wire.url)).read() == payload
        assert wire.connections == 2  # the until-close answer could not be reused
        await up.close()


async def test_abandoning_a_stream_closes_the_connection_so_the_upstream_stops():
    async def endless(writer):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(1000):
            writer.write(b"6\r\ndata: \r\n")
            await writer.drain()
            await asyncio.sleep(0.01)

    async with Wire(endless) as wire:
        up = Upstreams()
        resp = await post(up, wire.url)
        assert await resp.next_chunk()
        resp.close()
        await asyncio.wait_for(wire.closed.wait(), 5)
        await up.close()


async def test_a_connection_the_upstream_closed_while_idle_is_not_reused():
    async def answer_then_close(writer):
        writer.write(ok(b"{}"))
        await writer.drain()
        return "close"

    async with Wire(answer_then_close, ok(b'{"second":1}')) as wire:
        up = Upstreams()
        assert await (await post(up, wire.url)).read() == b"{}"
        await asyncio.wait_for(wire.closed.wait(), 5)
        await asyncio.sleep(0.05)
        assert await (await post(up, wire.url)).read() == b'{"second":1}'
        assert wire.connections == 2
        await up.close()


async def test_failures_are_transport_errors():
    async def reset_mid_body(writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\":")
        await writer.drain()
        return "close"

    async with Wire(b"NOT HTTP AT ALL\r\n\r\n", reset_mid_body, b"") as wire:
        up = Upstreams()
        with pytest.raises(TransportError, match="malformed"):
            await (await post(up, wire.url)).read()
        resp = await post(up, wire.url)
        with pytest.raises(TransportError, match="connection broke"):
            await resp.read()
        with pytest.raises(TransportError, match="invalid upstream request header"):
            await post(up, wire.url, headers={"x-evil": "a\r\nHost: elsewhere"})
        url = wire.url
        await up.close()
    up = Upstreams()
    with pytest.raises(TransportError, match="could not reach"):
        await post(up, url)  # nothing listens there any more


async def test_cancelled_before_the_headers_drops_the_connection():
    async def slow(writer):
        await asyncio.sleep(0.5)
        writer.write(ok(b"{}"))
        await writer.drain()

    async with Wire(slow, ok(b'{"fresh":1}')) as wire:
        up = Upstreams()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await post(up, wire.url)
        # The late answer must not be read as the answer to the next request.
        assert await (await post(up, wire.url)).read() == b'{"fresh":1}'
        assert wire.connections == 2
        await up.close()


async def test_https_verifies_the_certificate_and_the_host_name():
    trustme = pytest.importorskip("trustme")
    import ssl

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with Wire(ok(b'{"tls":1}'), ssl=server_ctx, host="localhost") as wire:
        up = Upstreams(ssl_context=client_ctx)
        assert await (await post(up, wire.url)).read() == b'{"tls":1}'
        await up.close()
        # the system store does not know this CA
        with pytest.raises(TransportError, match="TLS verification of the upstream localhost failed: .*issuer"):
            await post(Upstreams(ssl_context=ssl.create_default_context()), wire.url)
    async with Wire(ok(b"{}"), ssl=server_ctx, host="127.0.0.1") as wire:  # a name the cert does not carry
        with pytest.raises(TransportError, match="TLS verification of the upstream 127.0.0.1 failed: .*mismatch"):
            await post(Upstreams(ssl_context=client_ctx), wire.url)

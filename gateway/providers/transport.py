"""The providers' HTTP/1.1 client: keep-alive connections per origin, responses parsed by httptools.

aiohttp's client costs about 150 µs of CPU per request on this path (request and response objects,
header multidicts, cookie and tracing hooks, a stream reader, several loop hops); the gateway needs
one thing from it: POST a body, get the status and headers, then read the body whole or as it comes.
This does that in about half the CPU. What it keeps from a full client:

- a pool of idle keep-alive connections per (scheme, host, port), reused last-in first-out, never
  one idle longer than `keepalive_s`; a connection goes back only after a complete response that
  allows keep-alive, and one whose response was not read to the end is closed (the upstream sees it
  and stops generating);
- TLS for https (the system's trust store, read once at start-up off the event loop), with SNI and
  hostname checks;
- bodies by Content-Length, chunked, or to the end of the connection; gzip and deflate decoded (the
  gateway does not ask for them, but an upstream may send them);
- backpressure: a streamed body stops reading the socket while more than `HIGH_WATER` bytes wait for
  the consumer;
- no cookie jar (upstream cookies never carry from one caller's request to another's), no redirects;
- proxies (CONNECT tunnels, `HTTPS_PROXY`/`NO_PROXY`), custom CA bundles and client certificates for
  providers that have them (an `Egress`, `egress.py`); a provider without (`egress=None`) takes the
  plain path, untouched by them.

Responses and `TransportError` live in `response.py`; the provider maps the errors to the gateway's upstream
errors. A request is
never sent twice: a failure on a reused connection is reported like any other, and the router's retry
policy decides.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Mapping

import httptools
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.providers.egress import Egress, EgressError, why
from gateway.providers.response import Response, TransportError

def _head(url: yarl.URL) -> bytes:
    return f"POST {url.raw_path_qs} HTTP/1.1\r\nHost: {url.host_port_subcomponent}\r\n".encode()


def _header_lines(headers: Mapping[str, str], length: int) -> bytes:
    lines = []
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise TransportError(f"invalid upstream request header {name!r}")
        lines.append(f"{name}: {value}\r\n")
    lines.append(f"Content-Length: {length}\r\n\r\n")
    return "".join(lines).encode("utf-8")


class _Connection(asyncio.Protocol):
    """One socket to an upstream, carrying one request at a time."""

    def __init__(self, pool: Upstreams, key: tuple) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.paused = False
        self.idle_since = 0.0
        self.fresh = True  # no response completed on it yet
        self.response: Response | None = None
        self._headers: list[tuple[str, str]] = []
        self._head: asyncio.Future | None = None  # resolves to the Response once the headers are in
        self._complete = False
        self._until_close = False  # body delimited by the end of the connection

    # -- asyncio.Protocol --
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._head is None and self.response is None:
            self._break(TransportError("the upstream sent data without a request"))  # idle connection
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._break(TransportError("the upstream tried to upgrade the connection"))
        except (httptools.HttpParserError, zlib.error) as exc:
            self._break(TransportError(f"malformed HTTP response from the upstream: {type(exc).__name__}"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.pool._forget(self)
        resp = self.response
        if resp is not None and not self._complete:
            if self._until_close and exc is None:
                self._complete = True
                resp._finish()
            else:
                resp._fail(TransportError(f"upstream connection broke: {_cause(exc)}"))
        head = self._head
        if head is not None and not head.done():
            why = _cause(exc)
            if self.fresh and self.key[0] == "https":
                # A TLS 1.3 server checks the client certificate after the handshake and hangs up:
                # the client sees only the close (the server's alert is usually never flushed).
                why += (" (on a new TLS connection, before any answer: the upstream may require a client "
                        "certificate, or refused the one given)")
            head.set_exception(TransportError(f"upstream closed the connection: {why}"))

    # -- httptools callbacks --
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim response (100 Continue): the real one follows
            self._headers = []
            return
        headers = CIMultiDictProxy(CIMultiDict(self._headers))
        self._headers = []
        resp = self.response = Response(self, status, headers)
        self._until_close = "content-length" not in headers and "chunked" not in headers.get("transfer-encoding", "")
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_result(resp)

    def on_body(self, body: bytes) -> None:
        resp = self.response
        if resp is not None:
            resp._feed(body)

    def on_message_complete(self) -> None:
        resp = self.response
        if resp is None:  # the end of an interim response
            return
        self._complete = True
        self.fresh = False
        keep = self.parser.should_keep_alive() and not self._until_close
        resp._finish()
        self.response = None
        if keep and not self.lost:
            self.pool._release(self)
        else:
            self._close()

    # -- used by the pool and the response --
    def send(self, data: bytes) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        self._head = loop.create_future()
        self._complete = False
        self._until_close = False
        self.transport.write(data)  # the parser carries on: llhttp resets itself after each message
        return self._head

    def pause(self) -> None:
        if not self.paused and self.transport is not None and not self.lost:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.lost:
            self.paused = False
            self.transport.resume_reading()

    def abandon(self) -> None:
        """The consumer stopped before the end of the body: close, so the upstream stops sending."""
        self.response = None
        self._close()

    def _break(self, exc: TransportError) -> None:
        resp = self.response
        if resp is not None:
            resp._fail(exc)
            self.response = None
        head = self._head
        if head is not None and not head.done():
            head.set_exception(exc)
        self._close()

    def _close(self) -> None:
        self.lost = True
        self.pool._forget(self)
        if self.transport is not None:
            self.transport.close()


def _cause(exc: Exception | None) -> str:
    if exc is None:
        return "closed"
    if isinstance(exc, ssl.SSLError):  # e.g. the upstream refused our client certificate after the handshake
        return f"{type(exc).__name__} ({why(exc)})"
    return type(exc).__name__


class Upstreams:
    """Connection pools of every upstream origin; one per process, built at start-up."""

    def __init__(self, *, keepalive_s: float = 60.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.keepalive_s = keepalive_s
        self._ssl = ssl_context
        self._idle: dict[tuple, list[_Connection]] = {}
        self._all: set[_Connection] = set()
        self._heads: dict[yarl.URL, bytes] = {}

    @staticmethod
    def default_ssl_context() -> ssl.SSLContext:
        """The system trust store (reads files: call it off the event loop)."""
        return ssl.create_default_context()

    async def load_trust_store(self) -> None:
        """Read the system trust store now (start-up, off the loop) rather than on the first https call."""
        if self._ssl is None:
            self._ssl = await asyncio.to_thread(self.default_ssl_context)

    async def post(self, url: yarl.URL, headers: Mapping[str, str], body: bytes, *,
                   connect_timeout: float, egress: Egress | None = None) -> Response:
        """Send a POST and return once the response's status and headers are in."""
        if egress is not None:
            return await self._post_egress(url, headers, body, connect_timeout, egress)
        head = self._heads.get(url)
        if head is None:
            if url.scheme not in ("http", "https") or not url.host:
                raise TransportError(f"unsupported upstream URL scheme {url.scheme!r}")
            head = _head(url)
            if len(self._heads) < 1024:
                self._heads[url] = head
        data = head + _header_lines(headers, len(body)) + body
        conn = self._idle_connection((url.scheme, url.host, url.port))
        if conn is None:
            conn = await self._connect(url, connect_timeout)
        try:
            return await conn.send(data)
        except BaseException:
            # Failed, cancelled or timed out before the headers: an answer may still come, on a
            # connection nobody would read; close it.
            conn._close()
            raise

    async def _post_egress(self, url: yarl.URL, headers: Mapping[str, str], body: bytes, connect_timeout: float,
                           egress: Egress) -> Response:
        """`post` for a provider with a proxy or its own TLS settings: its own pools (a client
        certificate's connections are never lent to another provider), its own way to connect."""
        if url.scheme not in ("http", "https") or not url.host:
            raise TransportError(f"unsupported upstream URL scheme {url.scheme!r}")
        data = egress.head(url) + _header_lines(headers, len(body)) + body
        key = (url.scheme, url.host, url.port, egress.key)
        conn = self._idle_connection(key)
        if conn is None:
            conn = await self._connect(url, connect_timeout, key, egress)
        try:
            return await conn.send(data)
        except BaseException:
            conn._close()  # as in `post`
            raise

    def _idle_connection(self, key: tuple) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.lost and not conn.transport.is_closing() and now - conn.idle_since < self.keepalive_s:
                return conn
            conn._close()
        return None

    async def _connect(self, url: yarl.URL, timeout: float, key: tuple | None = None,
                       egress: Egress | None = None) -> _Connection:
        if key is None:
            key = (url.scheme, url.host, url.port)
        tls = url.scheme == "https"
        if tls and self._ssl is None and (egress is None or egress.ssl is None):
            self._ssl = await asyncio.to_thread(self.default_ssl_context)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                if egress is None:
                    _, conn = await loop.create_connection(
                        lambda: _Connection(self, key), url.host, url.port,
                        ssl=self._ssl if tls else None, server_hostname=url.host if tls else None)
                else:
                    conn = await egress.open(url, lambda: _Connection(self, key), self._ssl)
        except TimeoutError:
            raise TransportError(f"could not connect to the upstream within {timeout:g}s") from None
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(f"TLS verification of the upstream {url.host} failed: {why(exc)}") from None
        except ssl.SSLError as exc:
            raise TransportError(f"TLS handshake with the upstream {url.host} failed: {why(exc)}") from None
        except EgressError as exc:
            raise TransportError(str(exc)) from None
        except OSError as exc:
            raise TransportError(f"could not reach the upstream: {type(exc).__name__}") from None
        self._all.add(conn)
        return conn

    def _release(self, conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        conn.resume()
        self._idle.setdefault(conn.key, []).append(conn)

    def _forget(self, conn: _Connection) -> None:
        self._all.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    async def close(self) -> None:
        for conn in list(self._all):
            conn._close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing

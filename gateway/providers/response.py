"""One upstream response as the providers' HTTP client (`transport`) hands it over: status and headers, then
the body read whole or piece by piece as it arrives, gzip/deflate decoded.

A streamed body holds at most `HIGH_WATER` bytes for its consumer: past that the connection stops reading
the socket (the upstream feels the backpressure) and resumes once the consumer is under `LOW_WATER`.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol

from multidict import CIMultiDictProxy

HIGH_WATER = 256 * 1024  # bytes buffered for the consumer before the socket is paused
LOW_WATER = 64 * 1024


class TransportError(Exception):
    """Connecting, sending or reading failed; the message names the cause without any payload."""


class BodySource(Protocol):
    """The connection a body arrives on (transport's `_Connection`)."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def abandon(self) -> None: ...


class Response:
    """One upstream response: status and headers have arrived; the body is read whole or iterated once."""

    __slots__ = ("status", "headers", "_conn", "_chunks", "_buffered", "_done", "_exc", "_waiter", "_decoder")

    def __init__(self, conn: BodySource, status: int, headers: CIMultiDictProxy[str]) -> None:
        self.status = status
        self.headers = headers
        self._conn: BodySource | None = conn
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._done = False
        self._exc: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding in ("", "identity"):
            self._decoder = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            # wbits 47: a gzip or zlib header, detected; a raw deflate stream is retried as such below.
            self._decoder = zlib.decompressobj(47)
        else:
            self._decoder = None
            self._exc = TransportError(f"unsupported content-encoding {encoding!r} from the upstream")

    @property
    def ready(self) -> bool:
        """The next read returns without waiting: the body is all here, a piece is waiting, or it failed."""
        return self._done or bool(self._chunks) or self._exc is not None

    # -- fed by the connection --
    def _feed(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error:
                if self._buffered == 0 and not self._chunks:  # "deflate" sent as a raw stream
                    self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                    data = self._decoder.decompress(data)
                else:
                    raise
            if not data:
                return
        self._chunks.append(data)
        self._buffered += len(data)
        conn = self._conn
        if self._buffered > HIGH_WATER and conn is not None:
            conn.pause()
        self._wake()

    def _finish(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._chunks.append(tail)
                self._buffered += len(tail)
        self._done = True
        self._conn = None
        self._wake()

    def _fail(self, exc: Exception) -> None:
        if not self._done and self._exc is None:
            self._exc = exc
        self._conn = None
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter

    # -- the consumer's side --
    async def read(self) -> bytes:
        while not self._done:
            if self._exc is not None:
                raise self._exc
            conn = self._conn
            if conn is not None:
                conn.resume()  # read() wants everything: no backpressure
            await self._wait()
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return data

    async def next_chunk(self) -> bytes:
        """The next piece of the body as it arrived; b"" at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                conn = self._conn
                if conn is not None and self._buffered < LOW_WATER:
                    conn.resume()
                return chunk
            if self._exc is not None:
                raise self._exc
            if self._done:
                return b""
            await self._wait()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self.next_chunk():
            yield chunk

    def close(self) -> None:
        """Done with the response. A body not received to its end drops the connection."""
        conn = self._conn
        if conn is not None and not self._done:
            conn.abandon()
        self._conn = None

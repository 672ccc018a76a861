"""A small forward proxy for the egress tests: CONNECT tunnels (counted) and absolute-form http
requests, optionally requiring `Proxy-Authorization`, on the servers' event loop.

It pipes bytes both ways and closes one side when the other closes, as a real proxy does, so a
client that leaves closes the upstream's connection through the tunnel too.
"""

from __future__ import annotations

import asyncio
import base64

import yarl


class ConnectProxy:
    def __init__(self, user: str | None = None, password: str | None = None) -> None:
        self.required = None
        if user is not None:
            self.required = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.tunnels: list[str] = []  # CONNECT targets granted
        self.forwarded: list[str] = []  # absolute-form URLs forwarded
        self.refused = 0
        self.auth_seen: list[str | None] = []
        self.server: asyncio.base_events.Server | None = None
        self.url = ""

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        auth = headers.get("proxy-authorization")
        self.auth_seen.append(auth)
        if self.required is not None and auth != self.required:
            self.refused += 1
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\n"
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            try:
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
            except OSError:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                writer.close()
                return
            self.tunnels.append(target)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            first = b""
        else:
            url = yarl.URL(target)
            up_reader, up_writer = await asyncio.open_connection(url.host, url.port)
            self.forwarded.append(target)
            first = head
        if first:
            up_writer.write(first)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            dst.close()

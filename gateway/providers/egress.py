"""How a provider's connections leave the host: through an HTTP proxy (CONNECT tunnels), with a
custom CA bundle, with a client certificate (mTLS).

The choice: CONNECT support in the gateway's own transport (gateway.providers.transport) rather than
aiohttp's client for the providers that need it. A tunnel is set up once per pooled connection (one
more round trip to the proxy when a connection is opened, none per request), and afterwards a
proxied request costs what a direct one costs: the same pool, parser and keep-alive. aiohttp's client
would have cost about 150 µs of CPU per request on every proxied request (the reason the transport
exists) and a second code path for errors and timeouts. What this gives up: proxies are reached
over plain HTTP (an `https://` proxy URL is refused at load), both http and https upstreams are
tunnelled with CONNECT (no absolute-form forwarding), and proxy authentication is Basic only (user
and password in the proxy URL).

Settings, per provider (`[providers.NAME]`):

- `proxy`: `http://[user:pass@]host:port`; `""` for never; unset: the process's `HTTPS_PROXY` /
  `HTTP_PROXY` (by the upstream's scheme; lower-case names too) unless `NO_PROXY` lists the host.
- `ca_bundle`: a PEM file of CAs trusted for this provider instead of the system trust store.
- `client_cert` (and `client_key` when the key is not in the same file): presented when the
  upstream asks for a client certificate.

Everything is decided when the config is loaded (files read, proxies chosen for the provider's host),
so a provider without any of these pays nothing at request time.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

import yarl

from gateway.config.validate import ConfigError
from gateway.providers.transport import TransportError

if TYPE_CHECKING:
    from gateway.providers.base import ProviderOptions

_MAX_PROXY_HEAD = 16 * 1024


@dataclass(frozen=True, eq=False, slots=True)
class Egress:
    """One provider's way out; hashed by identity (it is part of its connections' pool key)."""

    proxy: yarl.URL | None  # the CONNECT proxy for the provider's host, if any
    tls: ssl.SSLContext | None  # a context with the provider's CA bundle or client certificate

    async def tunnel(self, loop: asyncio.AbstractEventLoop, conn: asyncio.Protocol, url: yarl.URL,
                     ctx: ssl.SSLContext | None) -> None:
        """Open a CONNECT tunnel to `url`'s origin through the proxy, TLS over it for https, and
        hand the transport to `conn`."""
        assert self.proxy is not None and self.proxy.host is not None and self.proxy.port is not None
        handshake = _Handshake(loop)
        try:
            transport, _ = await loop.create_connection(lambda: handshake, self.proxy.host, self.proxy.port)
        except OSError as exc:
            raise TransportError(f"could not reach the proxy {self.proxy.host}:{self.proxy.port}: "
                                 f"{type(exc).__name__}") from None
        try:
            authority = f"{url.host}:{url.port}"
            head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
            if self.proxy.user is not None:
                token = base64.b64encode(f"{self.proxy.user}:{self.proxy.password or ''}".encode()).decode()
                head += f"Proxy-Authorization: Basic {token}\r\n"
            transport.write((head + "\r\n").encode())
            status = await handshake.status
            if status != 200:
                raise TransportError(f"the proxy refused the tunnel to the upstream: HTTP {status}")
            if ctx is not None:
                tls = await loop.start_tls(transport, handshake, ctx, server_hostname=url.host)
                if tls is None:
                    raise TransportError("TLS over the proxy tunnel could not start")
                transport = tls
        except BaseException:
            transport.close()
            raise
        transport.set_protocol(conn)
        conn.connection_made(transport)


class _Handshake(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT: its status line, up to the blank line."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.status: asyncio.Future[int] = loop.create_future()
        self._buf = b""

    def data_received(self, data: bytes) -> None:
        if self.status.done():
            return
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > _MAX_PROXY_HEAD:
                self.status.set_exception(TransportError("the proxy's answer to CONNECT is too long"))
            return
        parts = self._buf[:end].split(b"\r\n", 1)[0].split()
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            self.status.set_exception(TransportError("the proxy answered CONNECT with something that is not HTTP"))
            return
        self.status.set_result(int(parts[1]))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.status.done():
            self.status.set_exception(TransportError("the proxy closed the connection during CONNECT"))


def egress_for(name: str, options: ProviderOptions, base_url: str, file: str) -> Egress | None:
    """The provider's egress, or None when it connects directly with the system trust store."""
    key = f"providers.{name}"
    proxy = _proxy_for(key, options.proxy, base_url, file)
    ctx = None
    if options.ca_bundle is not None or options.client_cert is not None:
        try:
            ctx = ssl.create_default_context(cafile=options.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(file, f"{key}.ca_bundle", f"a readable PEM file of CA certificates ({exc})") from None
        if options.client_cert is not None:
            try:
                ctx.load_cert_chain(options.client_cert, options.client_key)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(file, f"{key}.client_cert", "a readable PEM certificate, with its key in it or in "
                                  f"client_key ({exc})") from None
    elif options.client_key is not None:
        raise ConfigError(file, f"{key}.client_key", "client_cert too (the key alone is not a client certificate)")
    if proxy is None and ctx is None:
        return None
    return Egress(proxy, ctx)


def _proxy_for(key: str, setting: str | None, base_url: str, file: str) -> yarl.URL | None:
    upstream = yarl.URL(base_url) if base_url else None
    if setting is None:
        if upstream is None or upstream.host is None:
            return None
        env = urllib.request.getproxies_environment()
        setting = env.get(upstream.scheme)
        if not setting or urllib.request.proxy_bypass(upstream.host):  # NO_PROXY (no_proxy)
            return None
        where = f"the {upstream.scheme.upper()}_PROXY environment variable (for {key})"
    else:
        where = f"{key}.proxy"
    if setting == "":
        return None
    proxy = yarl.URL(setting if "://" in setting else f"http://{setting}")
    if proxy.scheme != "http" or not proxy.host:
        raise ConfigError(file, where, "an http://host:port proxy URL (CONNECT tunnels over plain HTTP)")
    return proxy

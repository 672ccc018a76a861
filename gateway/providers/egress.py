"""How a provider reaches its upstream: through which proxy, and trusting which certificates.

The choice: egress stays in the gateway's own client (`transport.py`) rather than sending such
providers through aiohttp's. A proxied https upstream is a CONNECT tunnel opened here, then TLS over
it (`loop.start_tls`), then the very same `_Connection`, keep-alive pool, backpressure and
cancellation as a direct connection; an http upstream goes to the proxy in absolute form. So a
proxied or mTLS provider streams, times out and cancels exactly like any other, and pays nothing per
request beyond one dict lookup (which proxy for this origin, cached); the tunnel and its TLS
handshake cost one proxy round trip per new connection, then the connection is reused like any
other. The plain path (no proxy, no TLS settings: `Provider.egress is None`) does not come here at all.

Measured (`benchmarks/egress_cost.py`, medians of 3 interleaved rounds, a loaded 2-core machine): client
CPU per kept-alive request 89 µs on the plain path, 86 µs with a `ca_bundle`, 90 µs through a CONNECT
tunnel (the same, within noise); a new connection 10.8 ms plain, 12.2 ms with a `ca_bundle` (its own
context), 14.7 ms through the tunnel (a proxy round trip more). The pass-through benchmark row is
unchanged (the branch's report has the figures).

What it honours:

- `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` and their lower-case forms (the standard library's reading
  of them: lower case wins, `NO_PROXY` takes host names, domain suffixes, `host:port` and `*`), read
  when the config is compiled (start-up and reload), never per request;
- a provider's `proxy` overrides the environment for every request of that provider (`NO_PROXY` is
  the environment's setting, for the environment's proxies); `proxy = ""` turns proxies off for it;
- credentials in the proxy URL (`http://user:pass@proxy:3128`) become a `Proxy-Authorization: Basic`
  header; messages and errors name a proxy by host and port only, never its credentials;
- `ca_bundle` replaces the system trust store for that provider (a PEM file of CA certificates, as
  `REQUESTS_CA_BUNDLE` does); `client_cert` + `client_key` present a client certificate (mTLS).

Limits: proxies are `http://` URLs (a TLS connection *to* the proxy is refused at load, as are SOCKS
proxies); a client key must not be encrypted; a provider's own side calls (Vertex's token refresh
through google-auth's `requests`, Bedrock's credential chain through botocore) follow those
libraries' handling of the same environment variables, not a provider's `proxy` or `ca_bundle`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

import yarl

from gateway.config.validate import ConfigError

if TYPE_CHECKING:
    from gateway.providers.transport import _Connection

# The standard library's NO_PROXY matching (documented behaviour, not in typeshed's stubs).
_proxy_bypass: Callable[[str, dict[str, str]], bool] = getattr(urllib.request, "proxy_bypass_environment")
MAX_CONNECT_REPLY = 16 * 1024
P = TypeVar("P", bound=asyncio.Protocol)  # a proxy's answer to CONNECT: a status line and a few headers


class EgressError(Exception):
    """The proxy refused or broke the tunnel; the message names the proxy by host and port only."""


class Proxy:
    """One proxy: where it is and the header that authenticates to it (never shown)."""

    __slots__ = ("host", "port", "auth", "shown")

    def __init__(self, host: str, port: int, auth: str | None) -> None:
        self.host = host
        self.port = port
        self.auth = auth  # the Proxy-Authorization header's value, or None
        self.shown = f"{host}:{port}"

    def __repr__(self) -> str:
        return f"Proxy({self.shown})"

    @classmethod
    def parse(cls, url: str, *, file: str, key: str) -> Proxy:
        """A proxy from its URL; a bad URL fails the config without quoting it (it may hold a password)."""
        expected = "an http:// proxy URL with a host, such as http://proxy.internal:3128"
        try:
            u = yarl.URL(url.strip() if "://" in url else "http://" + url.strip())
            port = u.port
        except ValueError:
            raise ConfigError(file, key, expected) from None
        if u.scheme != "http":
            raise ConfigError(file, key, f"{expected} (got a {u.scheme or 'missing'}:// URL; TLS or SOCKS "
                                         "connections to the proxy are not supported)")
        if not u.host or port is None or u.path not in ("", "/") or u.query_string or u.fragment:
            raise ConfigError(file, key, expected)
        auth = None
        if u.user is not None:
            token = base64.b64encode(f"{u.user}:{u.password or ''}".encode()).decode("ascii")
            auth = f"Basic {token}"
        return cls(u.host, port, auth)


def _env_proxies(file: str) -> tuple[dict[str, Proxy], str]:
    """The environment's proxies by scheme (http, https) and its NO_PROXY list."""
    found = urllib.request.getproxies_environment()
    proxies = {}
    for scheme in ("http", "https"):
        url = found.get(scheme)
        if url:
            proxies[scheme] = Proxy.parse(url, file=file, key=f"the environment's {scheme.upper()}_PROXY")
    return proxies, found.get("no", "")


class Egress:
    """One provider's way out: its TLS context (None: the pool's default) and its proxy choice."""

    __slots__ = ("ssl", "key", "_fixed", "_env", "_no_proxy", "_chosen", "_heads")

    def __init__(self, ssl_context: ssl.SSLContext | None, fixed: Proxy | None, use_env: bool,
                 env: dict[str, Proxy], no_proxy: str, key: str) -> None:
        self.ssl = ssl_context
        self.key = key  # equal settings share connection pools, across reloads too
        self._fixed = fixed
        self._env = env if use_env else {}
        self._no_proxy = no_proxy
        self._chosen: dict[tuple[str, str | None, int | None], Proxy | None] = {}
        self._heads: dict[yarl.URL, bytes] = {}

    @classmethod
    def compile(cls, *, proxy: str | None, ca_bundle: str | None, client_cert: str | None,
                client_key: str | None, file: str, key: str) -> Egress | None:
        """The egress of a provider's settings; None when it is the plain path (nothing to do)."""
        base = os.path.dirname(os.path.abspath(file))
        env, no_proxy = _env_proxies(file)
        fixed = Proxy.parse(proxy, file=file, key=f"{key}.proxy") if proxy else None
        use_env = proxy is None and bool(env)
        ctx = _ssl_context(ca_bundle, client_cert, client_key, base=base, file=file, key=key)
        if ctx is None and fixed is None and not use_env:
            return None
        ident = repr((ca_bundle, client_cert, client_key, proxy,
                      sorted((s, p.shown, p.auth) for s, p in env.items()) if use_env else None, no_proxy))
        return cls(ctx, fixed, use_env, env, no_proxy, hashlib.sha256(ident.encode()).hexdigest()[:16])

    def proxy_for(self, url: yarl.URL) -> Proxy | None:
        origin = (url.scheme, url.host, url.port)
        try:
            return self._chosen[origin]
        except KeyError:
            pass
        chosen = self._fixed
        if chosen is None and self._env:
            chosen = self._env.get(url.scheme)
            if chosen is not None and self._bypass(url):
                chosen = None
        if len(self._chosen) < 1024:
            self._chosen[origin] = chosen
        return chosen

    def _bypass(self, url: yarl.URL) -> bool:
        if not self._no_proxy:
            return False
        return _proxy_bypass(f"{url.host}:{url.port}", {"no": self._no_proxy})

    def head(self, url: yarl.URL) -> bytes:
        """The request line and Host header: absolute form (with the proxy's credentials) for an http
        upstream through a proxy, origin form otherwise."""
        head = self._heads.get(url)
        if head is not None:
            return head
        proxy = self.proxy_for(url)
        target = url.raw_path_qs
        extra = ""
        if proxy is not None and url.scheme == "http":
            target = str(url.with_fragment(None))
            if proxy.auth is not None:
                extra = f"Proxy-Authorization: {proxy.auth}\r\n"
        head = f"POST {target} HTTP/1.1\r\nHost: {url.host_port_subcomponent}\r\n{extra}".encode()
        if len(self._heads) < 1024:
            self._heads[url] = head
        return head

    async def open(self, url: yarl.URL, factory: Callable[[], _Connection],
                   default_ssl: ssl.SSLContext | None) -> _Connection:
        """A connection to `url`'s origin, through the proxy when there is one (TLS inside the tunnel)."""
        loop = asyncio.get_running_loop()
        host, port = url.host, url.port
        if host is None or port is None:
            raise EgressError("the upstream URL has no host or port")
        tls = url.scheme == "https"
        ctx = (self.ssl or default_ssl) if tls else None
        proxy = self.proxy_for(url)
        if proxy is None:
            _, conn = await loop.create_connection(factory, host, port, ssl=ctx, server_hostname=host if tls else None)
            return conn
        if not tls:
            _, conn = await _to_proxy(loop, factory, proxy)
            return conn
        if ctx is None:
            raise EgressError("no TLS context for the upstream")
        raw, tunnel = await _to_proxy(loop, _Tunnel, proxy)
        try:
            await tunnel.establish(url, proxy)
            conn = factory()
            tls_transport = await loop.start_tls(raw, conn, ctx, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        if tls_transport is None:  # the loop closed the transport under us
            raise EgressError(f"the tunnel through the proxy at {proxy.shown} closed during the TLS handshake")
        conn.connection_made(tls_transport)
        return conn


async def _to_proxy(loop: asyncio.AbstractEventLoop, factory: Callable[[], P], proxy: Proxy) -> tuple[asyncio.Transport, P]:
    try:
        transport, protocol = await loop.create_connection(factory, proxy.host, proxy.port)
    except OSError as exc:
        raise EgressError(f"could not reach the proxy at {proxy.shown}: {type(exc).__name__}") from None
    return transport, protocol


class _Tunnel(asyncio.Protocol):
    """The proxy side of a CONNECT: send it, read the proxy's answer, hand the socket over."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end >= 0:
            if end + 4 != len(self.buffer):  # the upstream cannot speak before our TLS hello
                self.answer.set_exception(EgressError("the proxy sent data after its answer to CONNECT"))
            else:
                self.answer.set_result(bytes(self.buffer[:end]))
        elif len(self.buffer) > MAX_CONNECT_REPLY:
            self.answer.set_exception(EgressError("the proxy's answer to CONNECT is too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(EgressError("the proxy closed the connection before answering CONNECT"))

    async def establish(self, url: yarl.URL, proxy: Proxy) -> None:
        authority = url.host_port_subcomponent
        request = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
        if proxy.auth is not None:
            request += f"Proxy-Authorization: {proxy.auth}\r\n"
        assert self.transport is not None
        self.transport.write((request + "\r\n").encode())
        try:
            answer = await self.answer
        except EgressError as exc:
            raise EgressError(f"{exc} (proxy {proxy.shown})") from None
        status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise EgressError(f"the proxy at {proxy.shown} did not answer CONNECT in HTTP")
        if not parts[1].startswith("2"):
            reason = parts[2][:80] if len(parts) > 2 else ""
            raise EgressError(f"the proxy at {proxy.shown} refused the tunnel to {authority}: {parts[1]} {reason}".rstrip())


def _ssl_context(ca_bundle: str | None, client_cert: str | None, client_key: str | None, *, base: str,
                 file: str, key: str) -> ssl.SSLContext | None:
    if ca_bundle is None and client_cert is None and client_key is None:
        return None
    if (client_cert is None) != (client_key is None):
        missing = "client_key" if client_key is None else "client_cert"
        raise ConfigError(file, f"{key}.{missing}", "client_cert and client_key set together (a PEM certificate "
                                                    "and its unencrypted PEM private key)")
    if ca_bundle is not None:
        path = os.path.join(base, ca_bundle)
        try:
            ctx = ssl.create_default_context(cafile=path)
        except FileNotFoundError:
            raise ConfigError(file, f"{key}.ca_bundle", f"a readable PEM file of CA certificates ({path} does not exist)") from None
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(file, f"{key}.ca_bundle",
                              f"a readable PEM file of CA certificates ({path}: {why(exc)})") from None
    else:
        ctx = ssl.create_default_context()
    if client_cert is not None and client_key is not None:
        cert, pkey = os.path.join(base, client_cert), os.path.join(base, client_key)
        for name, path in (("client_cert", cert), ("client_key", pkey)):
            if not os.path.isfile(path):
                raise ConfigError(file, f"{key}.{name}", f"a readable PEM file ({path} does not exist)")
        try:
            ctx.load_cert_chain(cert, pkey, password=_no_password)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(file, f"{key}.client_cert", "a PEM client certificate matching the unencrypted PEM "
                                                          f"private key in client_key ({cert}, {pkey}: {why(exc)})") from None
    return ctx


def _no_password() -> str:
    raise ValueError("the private key is encrypted")


def why(exc: BaseException) -> str:
    """A short cause, without payload: an SSL error's reason, or the OS error's text."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or "certificate verify failed"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__

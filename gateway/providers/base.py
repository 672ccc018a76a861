"""The provider adapter contract, and the HTTP transport shared by every HTTP provider.

A provider knows one vendor's wire: where each API lives (`endpoint`), how to authenticate
(`auth_headers`), and how to read its errors (`map_error`). Translating between the caller's API and
the provider's wire is `gateway.adapters`; the provider only moves bytes. A new OpenAI-compatible
provider is a small subclass (see `vllm.py`), registered with one line in `registry.py`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

import yarl
from pydantic import Field

from gateway.config.validate import ConfigError, Strict
from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout
from gateway.providers.egress import Egress
from gateway.providers.key_scrub import KeyScrubber
from gateway.providers.response import Response, TransportError
from gateway.providers.transport import Upstreams
from gateway.translate.upstream_errors import anthropic_error_to_gateway, openai_error_to_gateway


class ProviderOptions(Strict):
    type: str
    base_url: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] = {}
    connect_timeout_s: float | None = Field(None, gt=0)
    first_byte_timeout_s: float | None = Field(None, gt=0)
    idle_timeout_s: float | None = Field(None, gt=0)
    total_timeout_s: float | None = Field(None, gt=0)
    # Egress (gateway/providers/egress.py). `proxy`: an http:// proxy URL (credentials allowed) used for
    # every request of this provider instead of HTTPS_PROXY/HTTP_PROXY/NO_PROXY; "" turns proxies off.
    proxy: str | None = None
    # A PEM file of CA certificates that replaces the system trust store for this provider (relative
    # paths are read from the config file's folder).
    ca_bundle: str | None = None
    # A PEM client certificate and its unencrypted PEM private key, presented to the upstream (mTLS).
    client_cert: str | None = None
    client_key: str | None = None


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float
    first_byte: float
    idle: float
    total: float


@dataclass(slots=True)
class UpstreamRequest:
    url: str
    headers: dict[str, str]
    body: bytes


class UpstreamReply:
    """An upstream response whose headers have arrived; the body is read or iterated once."""

    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes:
        raise NotImplementedError

    def iter_chunks(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection; after an incomplete read this closes it (the upstream sees it)."""


class HttpReply(UpstreamReply):
    """An upstream HTTP response, with the provider's read timeouts and errors."""

    __slots__ = ("_resp", "status", "headers", "_idle", "_deadline")

    def __init__(self, resp: Response, idle: float, deadline: float) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers
        self._idle = idle
        self._deadline = deadline  # loop time by which a whole (non-streamed) response must be read

    async def read(self) -> bytes:
        try:
            if self._resp.ready:  # the whole body is usually here already: no timer to arm
                return await self._resp.read()
            async with asyncio.timeout(min(self._idle, self._deadline - asyncio.get_running_loop().time())):
                return await self._resp.read()
        except TimeoutError:
            raise UpstreamTimeout("upstream stalled while sending the response") from None
        except TransportError as exc:
            raise UpstreamError(str(exc)) from None

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        resp = self._resp
        idle = self._idle
        while True:
            try:
                if resp.ready:
                    chunk = await resp.next_chunk()
                else:
                    async with asyncio.timeout(idle):
                        chunk = await resp.next_chunk()
            except TimeoutError:
                raise UpstreamTimeout(f"upstream sent nothing for {idle:g}s") from None
            except TransportError as exc:
                raise UpstreamError(str(exc)) from None
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        # A body not read to its end drops the connection, so the upstream stops generating; a
        # complete one has already gone back to the keep-alive pool.
        self._resp.close()


class Provider:
    """Base of every provider. Subclasses set `wire`, `Options` and the hooks below."""

    wire: ClassVar[str] = "openai"  # the API family the upstream speaks: "openai" or "anthropic"
    Options: ClassVar[type[ProviderOptions]] = ProviderOptions
    default_base_url: ClassVar[str | None] = None
    apis: ClassVar[frozenset[str]] = frozenset({"chat", "embeddings", "responses"})
    reshapes: ClassVar[bool] = False  # `shape_body` rewrites request bodies (a preset's quirks)

    def __init__(self, name: str, options: ProviderOptions, *, file: str, server_timeouts: Timeouts,
                 transport: Upstreams) -> None:
        self.name = name
        self.options = options
        base = options.base_url or self.default_base_url
        if base is None and self.needs_http():
            raise ConfigError(file, f"providers.{name}.base_url", "a base URL for this provider type")
        self.base_url = (base or "").rstrip("/")
        self.api_key = self._read_key(file)
        # An upstream may quote the credential back (OpenAI's 401 does, and a 400's message is passed on):
        # everything of the upstream's that is shown goes through this first. None for a short key.
        self.scrubber = KeyScrubber.for_key(self.api_key)
        o = options
        self.timeouts = Timeouts(
            connect=o.connect_timeout_s or server_timeouts.connect,
            first_byte=o.first_byte_timeout_s or server_timeouts.first_byte,
            idle=o.idle_timeout_s or server_timeouts.idle,
            total=o.total_timeout_s or server_timeouts.total,
        )
        self._static_headers = {"content-type": "application/json", **o.headers, **self.auth_headers()}
        # The process's connection pools (`Services.upstreams`), shared by every runtime snapshot.
        self.transport = transport
        # Proxy and TLS settings (from the options and the environment); None on the plain path.
        self.egress = Egress.compile(proxy=o.proxy, ca_bundle=o.ca_bundle, client_cert=o.client_cert,
                                     client_key=o.client_key, file=file, key=f"providers.{name}")
        # Parsed endpoint URLs: aiohttp would parse the same few strings again on every request.
        self._urls: dict[str, yarl.URL] = {}

    def needs_http(self) -> bool:
        return True

    def _read_key(self, file: str) -> str | None:
        env = self.options.api_key_env
        if env is None:
            return None
        value = os.environ.get(env)
        if not value:
            raise ConfigError(file, f"providers.{self.name}.api_key_env", f"the environment variable {env} to be set")
        return value

    # -- hooks -----------------------------------------------------------------------------------
    def endpoint(self, api: str, model: str, stream: bool) -> str:
        raise NotImplementedError

    def auth_headers(self) -> dict[str, str]:
        return {}

    def shape_body(self, api: str, body: bytes) -> bytes:
        """The upstream body with this provider's quirks applied (only called when `reshapes`)."""
        return body

    @property
    def key_unprotected(self) -> bool:
        """A key too short to be told apart from ordinary text, so not scrubbed (`check-config` warns)."""
        return self.api_key is not None and self.scrubber is None

    def scrub_error(self, err: GatewayError) -> GatewayError:
        """`err`, made from what the upstream sent, without this provider's key in anything shown."""
        return self.scrubber.error(err) if self.scrubber is not None else err

    def map_error(self, status: int, body: bytes) -> GatewayError:
        """A safe gateway error for an upstream error response (the upstream status is kept)."""
        if self.wire == "anthropic":
            return anthropic_error_to_gateway(status, body)
        return openai_error_to_gateway(status, body)

    # -- transport -------------------------------------------------------------------------------
    def _url(self, url: str) -> yarl.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = yarl.URL(url)
            if len(self._urls) < 1024:  # endpoints come from config; bounded all the same
                self._urls[url] = parsed
        return parsed

    def build(self, api: str, model: str, stream: bool, body: bytes, extra_headers: Mapping[str, str]) -> UpstreamRequest:
        headers = dict(self._static_headers)
        headers.update(extra_headers)
        if self.reshapes:
            body = self.shape_body(api, body)
        return UpstreamRequest(self.endpoint(api, model, stream), headers, body)

    async def send(self, req: UpstreamRequest) -> UpstreamReply:
        """Send the request and wait for the response headers (bounded by the first-byte timeout)."""
        t = self.timeouts
        started = asyncio.get_running_loop().time()
        limit = min(t.first_byte, t.total)
        try:
            async with asyncio.timeout(limit):
                resp = await self.transport.post(self._url(req.url), req.headers, req.body, connect_timeout=t.connect,
                                                  egress=self.egress)
        except TimeoutError:
            raise UpstreamTimeout(f"upstream did not answer within {limit:g}s") from None
        except TransportError as exc:
            raise UpstreamError(str(exc), code="upstream_unreachable") from None
        # `total` bounds a whole response; a stream is bounded by `idle` between chunks instead.
        return HttpReply(resp, t.idle, started + t.total)

"""Vertex AI's Gemini models: the Gemini wire (`gemini.py`) on the aiplatform URLs, authenticated with
an OAuth access token from Google credentials, refreshed through `google-auth`.

Credentials are a service-account key (JSON) named by `credentials_file`, or else
Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, the gcloud user login, the metadata
server). They are loaded when the config is compiled (off the event loop); the token is fetched on
first use and again when google-auth says it is expired or about to be, by one refresh at a time run in
a worker thread (google-auth's transport is blocking), so the loop never waits on it. A failed refresh
is an attempt that failed (502 `upstream_auth_failed`), retried and fallen back like a 5xx.

    [providers.vertex]
    type = "vertex"
    project = "my-project"
    location = "us-central1"                 # or "global"
    credentials_file = "/secrets/sa.json"    # unset: Application Default Credentials
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pydantic import Field

from gateway.config.validate import ConfigError
from gateway.errors import GatewayError, UpstreamError
from gateway.providers.base import ProviderOptions, Timeouts, UpstreamReply, UpstreamRequest
from gateway.providers.gemini import GeminiProvider
from gateway.providers.key_scrub import KeyScrubber
from gateway.providers.transport import Upstreams

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class VertexOptions(ProviderOptions):
    # The Google Cloud project; unset: the credentials' own project.
    project: str | None = None
    # The region of the endpoint (`us-central1`, `europe-west4`, ...) or `global`.
    location: str = Field("us-central1", pattern=r"^[a-z0-9-]+$")
    # A service-account key file (JSON); relative to the main config file.
    # Unset: Application Default Credentials.
    credentials_file: str | None = None
    # The model publisher in the URL (`google` for Gemini).
    publisher: str = Field("google", pattern=r"^[a-z0-9-]+$")


class VertexProvider(GeminiProvider):
    Options = VertexOptions
    default_base_url = None

    def __init__(self, name: str, options: ProviderOptions, *, file: str, server_timeouts: Timeouts,
                 transport: Upstreams) -> None:
        opts: VertexOptions = options  # type: ignore[assignment]
        if opts.base_url is None:
            host = "aiplatform.googleapis.com" if opts.location == "global" else f"{opts.location}-aiplatform.googleapis.com"
            options = opts.model_copy(update={"base_url": f"https://{host}/v1"})
        super().__init__(name, options, file=file, server_timeouts=server_timeouts, transport=transport)
        self.credentials, project = _load(opts, name, file)
        self.project = opts.project or project
        if not self.project:
            raise ConfigError(file, f"providers.{name}.project", "a project (the credentials name none)")
        # google-auth and requests are imported here, off the event loop, by a config that has a Vertex
        # provider: importing them costs about 0.2 s, which every other gateway process is spared.
        import google.auth.exceptions
        import google.auth.transport.requests
        import requests

        # google-auth's token requests, on one session kept alive between refreshes.
        self._request = google.auth.transport.requests.Request(requests.Session())
        self._auth_errors = (google.auth.exceptions.GoogleAuthError, TimeoutError)
        self._refreshing: asyncio.Lock | None = None

    def model_path(self, model: str) -> str:
        opts: VertexOptions = self.options  # type: ignore[assignment]
        return (f"/projects/{self.project}/locations/{opts.location}/publishers/{opts.publisher}"
                + super().model_path(model))

    async def access_token(self) -> str:
        creds = self.credentials
        if creds.valid:  # google-auth counts a token expiring within its refresh threshold as expired
            return str(creds.token)
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:
            if not creds.valid:  # another request may have refreshed it while this one waited
                try:
                    async with asyncio.timeout(min(self.timeouts.first_byte, 30.0)):
                        await asyncio.to_thread(creds.refresh, self._request)
                except self._auth_errors:
                    raise UpstreamError("the gateway could not get an access token for Vertex AI",
                                        code="upstream_auth_failed") from None
        return str(creds.token)

    def map_error(self, status: int, body: bytes) -> GatewayError:
        if status == 401:
            # The token was refused (revoked, or the clock is off): the next request fetches a new one
            # rather than failing with it until it expires.
            self.credentials.token = None
        return super().map_error(status, body)

    def scrub_error(self, err: GatewayError) -> GatewayError:
        """The access token is a credential too: out of anything an upstream error shows (it changes
        hourly, so it is matched here rather than by the fixed-key scrubber of the byte stages)."""
        token = self.credentials.token
        scrubber = KeyScrubber.for_key(token) if isinstance(token, str) else None
        return scrubber.error(err) if scrubber is not None else err

    async def send(self, req: UpstreamRequest) -> UpstreamReply:
        req.headers["authorization"] = "Bearer " + await self.access_token()
        return await super().send(req)


def _load(opts: VertexOptions, name: str, file: str) -> tuple[Any, str | None]:
    import google.auth
    import google.auth.exceptions
    from google.oauth2 import service_account

    try:
        if opts.credentials_file is not None:
            path = os.path.join(os.path.dirname(os.path.abspath(file)), opts.credentials_file)
            # A service-account key only: google-auth's generic loader would take any credential type
            # from the file (its docs call that a risk); other kinds come through ADC.
            creds = service_account.Credentials.from_service_account_file(path, scopes=SCOPES)
            return creds, creds.project_id
        return google.auth.default(scopes=SCOPES)
    except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
        key = f"providers.{name}.credentials_file" if opts.credentials_file else f"providers.{name}"
        raise ConfigError(file, key, f"readable Google credentials ({type(exc).__name__}: {exc})") from None

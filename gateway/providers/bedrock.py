"""AWS Bedrock's Converse API (`/model/{modelId}/converse` and `/converse-stream`), signed with SigV4.

The target's `model` is a Bedrock model id or inference profile (`anthropic.claude-3-5-haiku-20241022-v1:0`,
`us.anthropic.claude-sonnet-4-20250514-v1:0`, `amazon.nova-pro-v1:0`). Requests are signed with
botocore's `SigV4Auth` (service `bedrock`) using credentials from botocore's standard chain
(`gateway.providers.aws_credentials`: cached, refreshed in a thread, never resolved on the event loop);
the signature covers the host, the date, the content type and the body's hash, and the URL is sent
exactly as signed (the model id's `:` percent-encoded, as botocore does). The stream answer is AWS's
binary event-stream (`gateway.codecs.aws_eventstream`); errors are named by the `x-amzn-ErrorType`
header (`gateway.translate.upstream_errors.bedrock_error_to_gateway`). The secret access key is
scrubbed from everything the upstream sends back, like any provider's key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import quote

import orjson
import yarl

from gateway.config.validate import ConfigError
from gateway.errors import GatewayError
from gateway.providers.aws_credentials import AwsCredentials
from gateway.providers.base import Provider, ProviderOptions, Timeouts, UpstreamReply, UpstreamRequest
from gateway.providers.key_scrub import KeyScrubber
from gateway.providers.transport import Upstreams
from gateway.translate.upstream_errors import bedrock_error_to_gateway, bedrock_error_type

if TYPE_CHECKING:
    from botocore.credentials import ReadOnlyCredentials


class BedrockOptions(ProviderOptions):
    region: str
    profile: str | None = None
    role_arn: str | None = None
    role_session_name: str = "llm-gateway"


class BedrockProvider(Provider):
    wire = "bedrock"
    Options = BedrockOptions
    apis = frozenset({"converse"})

    def __init__(self, name: str, options: ProviderOptions, *, file: str, server_timeouts: Timeouts,
                 transport: Upstreams) -> None:
        opts: BedrockOptions = options  # type: ignore[assignment]
        if opts.api_key_env is not None:
            raise ConfigError(file, f"providers.{name}.api_key_env", "no api_key_env: Bedrock requests are "
                              "signed with AWS credentials (the standard chain, `profile` or `role_arn`)")
        if opts.base_url is None:
            opts = opts.model_copy(update={"base_url": f"https://bedrock-runtime.{opts.region}.amazonaws.com"})
        super().__init__(name, opts, file=file, server_timeouts=server_timeouts, transport=transport)
        # Imported here, when the config has a Bedrock provider (off the loop: at start-up or in the
        # reload's compile thread), not by every process that imports the registry.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        self._signer, self._request = SigV4Auth, AWSRequest
        self.region = opts.region
        self.credentials = AwsCredentials(profile=opts.profile, role_arn=opts.role_arn,
                                          session_name=opts.role_session_name, region=opts.region,
                                          on_change=self._new_credentials)

    def _new_credentials(self, creds: ReadOnlyCredentials) -> None:
        # Replies are scrubbed of the secret key in use (a rotated one replaces the last).
        self.scrubber = KeyScrubber.for_key(creds.secret_key)

    def endpoint(self, api: str, model: str, stream: bool) -> str:
        return f"{self.base_url}/model/{quote(model, safe='')}/{'converse-stream' if stream else 'converse'}"

    def _url(self, url: str) -> yarl.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = yarl.URL(url, encoded=True)  # sent exactly as signed: yarl would decode %3A
            if len(self._urls) < 1024:
                self._urls[url] = parsed
        return parsed

    async def send(self, req: UpstreamRequest) -> UpstreamReply:
        creds = await self.credentials.get()
        req.headers.update(self._signature(req, creds))
        reply = await super().send(req)
        return reply if reply.status < 300 else _TypedError(reply)

    def _signature(self, req: UpstreamRequest, creds: ReadOnlyCredentials) -> dict[str, str]:
        """The SigV4 headers for the request: only the content type is signed besides what SigV4 adds,
        so the trace headers and configured extras travel unsigned."""
        aws = self._request(method="POST", url=req.url, data=req.body,
                            headers={"content-type": req.headers.get("content-type", "application/json")})
        self._signer(creds, "bedrock", self.region).add_auth(aws)
        return {k: v for k, v in aws.headers.items() if k.lower() != "content-type"}

    def map_error(self, status: int, body: bytes) -> GatewayError:
        try:
            envelope = orjson.loads(body)
            kind, raw = envelope["type"], envelope["body"].encode()
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            kind, raw = "", body
        err = bedrock_error_to_gateway(status, kind, raw)
        if err.code == "upstream_auth_failed":
            self.credentials.invalidate()  # expired or rotated: the next request resolves them again
        return err


class _TypedError(UpstreamReply):
    """An error reply whose body carries the `x-amzn-ErrorType` header's type, for `map_error`."""

    __slots__ = ("_reply", "status", "headers")

    def __init__(self, reply: UpstreamReply) -> None:
        self._reply = reply
        self.status = reply.status
        self.headers = reply.headers

    async def read(self) -> bytes:
        body = await self._reply.read()
        return orjson.dumps({"type": bedrock_error_type(self.headers.get("x-amzn-errortype")),
                             "body": body.decode("utf-8", "replace")})

    def iter_chunks(self) -> AsyncIterator[bytes]:
        return self._reply.iter_chunks()

    def close(self) -> None:
        self._reply.close()

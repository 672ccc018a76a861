"""AWS credentials for signing, from botocore's standard chain, resolved and refreshed off the event loop.

The chain (environment, shared credentials and config files with an optional named `profile`, SSO,
container and instance metadata, ...) is botocore's own resolver, and an optional `role_arn` is
assumed through STS with botocore's `AssumeRoleCredentialFetcher`, refreshed before it expires. Every
step of that may do file or network I/O (instance metadata waits up to a second per try), so none of
it runs on the loop: the first request of a provider resolves the chain in a thread, and the frozen
credentials are cached. Requests then sign with the cached copy and never wait, except when:

- they are within `MANDATORY_S` of expiring (or gone): requests wait for one refresh in a thread;
- they are within `ADVISORY_S` of expiring: requests go on with the cached copy while one refresh runs
  in a thread (every request at that moment shares it).

`invalidate` (after AWS refused the signature as expired) makes the next request wait for a refresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.errors import UpstreamError

if TYPE_CHECKING:  # botocore's session and credentials modules cost ~0.5 s and ~20 MB to import: only
    # a process with a Bedrock provider pays that, in the worker thread of its first resolution
    from botocore.credentials import Credentials, ReadOnlyCredentials

log = logging.getLogger("gateway.providers.aws")

ADVISORY_S = 15 * 60  # botocore's own advisory refresh window
MANDATORY_S = 10 * 60  # and its mandatory one: past it, signing waits for fresh credentials


class NoCredentials(UpstreamError):
    code = "upstream_credentials_missing"


class AwsCredentials:
    __slots__ = ("profile", "role_arn", "session_name", "region", "on_change", "_source", "_frozen",
                 "_pending", "_stale")

    def __init__(self, *, profile: str | None, role_arn: str | None, session_name: str, region: str,
                 on_change: Callable[[ReadOnlyCredentials], None]) -> None:
        self.profile = profile
        self.role_arn = role_arn
        self.session_name = session_name
        self.region = region
        self.on_change = on_change  # told each new set (the provider scrubs the secret key from replies)
        self._source: Credentials | None = None  # botocore's (possibly refreshable) credentials
        self._frozen: ReadOnlyCredentials | None = None
        self._pending: asyncio.Future[ReadOnlyCredentials] | None = None
        self._stale = False

    async def get(self) -> ReadOnlyCredentials:
        frozen = self._frozen
        if frozen is not None and not self._stale:
            refresh_needed = getattr(self._source, "refresh_needed", None)  # refreshable credentials only
            if refresh_needed is None or not refresh_needed(ADVISORY_S):
                return frozen
            if not refresh_needed(MANDATORY_S):
                self._refresh()  # in the background; this request signs with what it has
                return frozen
        return await asyncio.shield(self._refresh())

    def invalidate(self) -> None:
        self._stale = True

    def _refresh(self) -> asyncio.Future[ReadOnlyCredentials]:
        if self._pending is None:
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._resolve))
            self._pending.add_done_callback(self._done)
        return self._pending

    def _done(self, fut: asyncio.Future[ReadOnlyCredentials]) -> None:
        self._pending = None
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None:
            self._frozen = fut.result()
            self._stale = False
            self.on_change(self._frozen)
        elif not isinstance(exc, NoCredentials):  # a bug, possibly in a background refresh nobody awaits
            log.error("resolving AWS credentials failed", exc_info=exc)

    def _resolve(self) -> ReadOnlyCredentials:
        """In a worker thread: the chain (once), then frozen credentials (botocore refreshes refreshable
        ones here when they are within its refresh window)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            source = self._source
            if source is None or self._stale:  # first use, or AWS refused what the chain gave: start over
                source = self._source = self._chain()
            frozen = source.get_frozen_credentials()
        except (BotoCoreError, ClientError) as exc:  # a missing profile, STS refusing the role, ...
            log.warning("resolving AWS credentials failed: %s", exc)
            raise NoCredentials(f"the gateway could not resolve its AWS credentials ({type(exc).__name__})") from None
        if not frozen.access_key or not frozen.secret_key:
            raise NoCredentials("no AWS credentials were found for the Bedrock provider")
        return frozen

    def _chain(self) -> Credentials:
        import botocore.session
        from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

        session = botocore.session.Session(profile=self.profile)
        base = session.get_credentials()
        if base is None:
            raise NoCredentials("no AWS credentials were found for the Bedrock provider (environment, "
                                "shared files, SSO, container or instance metadata)")
        if self.role_arn is None:
            return base

        def client_creator(service: str, **kwargs: Any) -> Any:
            kwargs.setdefault("region_name", self.region)
            return session.create_client(service, **kwargs)

        fetcher = AssumeRoleCredentialFetcher(client_creator, base, self.role_arn,
                                              extra_args={"RoleSessionName": self.session_name})
        return DeferredRefreshableCredentials(fetcher.fetch_credentials, "assume-role")

"""Admission at the door: who may hold a process's request slots, and for how long a body may take.

A request passes three bounds, each counted per process in `GatewayState`:

- **per key** (`[server] max_in_flight_per_key`): once authenticated, a request holds one of its key's
  slots until it ends, while receiving its body and while served. One key, however many connections it
  opens, cannot take the gateway from the others: the next request gets 429 `key_in_flight_exceeded`.
- **body readers** (`max_body_readers`): requests still receiving their body. The read is bounded in
  time (`body_timeout_s`, 408 and the connection closed), so a client that drips its body holds a
  reader slot for at most that long, and never an in-flight slot.
- **in flight** (`max_in_flight`): requests whose body has arrived and that are being served. While
  in flight, a client that reads nothing of its answer for `send_timeout_s` is disconnected.

Each refusal carries Retry-After (except the 408, whose body is the client's to resend) and a
decision with its reason code, so it shows in records and metrics. A request without a valid key never
reads its body (auth happens on the headers), so it holds none of these.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway import reasons
from gateway.context import Decision, RequestContext
from gateway.errors import GatewayError, Overloaded, RateLimited, RequestTimeout
from gateway.http.parse import read_json
from gateway.http.state import GatewayState

_RETRY = {"retry-after": "1"}


def _refuse(ctx: RequestContext, err: GatewayError) -> GatewayError:
    ctx.decisions.append(Decision("server", "capacity", "refuse", err.reason or reasons.OVERLOADED))
    return err


def overloaded(ctx: RequestContext) -> GatewayError:
    return _refuse(ctx, Overloaded("the gateway is at capacity; retry shortly", headers=dict(_RETRY),
                                   reason=reasons.OVERLOADED))


def hold_key_slot(state: GatewayState, ctx: RequestContext) -> str:
    """Count the request against its key; the caller releases it (`release_key_slot`) when it ends."""
    key_id = ctx.principal.key_id
    held = state.open_by_key.get(key_id, 0)
    if held >= ctx.runtime.server.max_in_flight_per_key:
        raise _refuse(ctx, RateLimited(
            f"this key already has {held} requests in progress, the most one key may have at once; retry shortly",
            code="key_in_flight_exceeded", headers=dict(_RETRY), reason=reasons.KEY_IN_FLIGHT))
    state.open_by_key[key_id] = held + 1
    return key_id


def release_key_slot(state: GatewayState, key_id: str) -> None:
    held = state.open_by_key[key_id] - 1
    if held:
        state.open_by_key[key_id] = held
    else:  # no zero entries: the table stays as small as the set of keys with requests open
        del state.open_by_key[key_id]


async def read_body(request: web.Request, ctx: RequestContext, state: GatewayState) -> dict:
    """The JSON body, read as one of at most `max_body_readers` and within `body_timeout_s`."""
    server = ctx.runtime.server
    if request.content.is_eof():
        # The whole body came with the headers: nothing to wait for, so no reader slot to take.
        return await read_json(request, server.max_body_bytes)
    if state.reading >= server.max_body_readers:
        raise _refuse(ctx, Overloaded("the gateway is receiving too many request bodies; retry shortly",
                                      headers=dict(_RETRY), reason=reasons.BODY_READERS_FULL))
    task = asyncio.current_task()
    state.watchdog.start_reading(task, server.body_timeout_s)
    state.reading += 1
    try:
        return await read_json(request, server.max_body_bytes)
    except asyncio.CancelledError:
        # The watchdog's cancel (and nobody else's: a client gone or a shutdown is passed on).
        if state.watchdog.stop_reading(task) and task.uncancel() == 0:
            raise _refuse(ctx, RequestTimeout(f"the request body did not arrive within {server.body_timeout_s:g}s",
                                              reason=reasons.BODY_TIMEOUT)) from None
        raise
    finally:
        state.watchdog.stop_reading(task)
        state.reading -= 1


def enter(request: web.Request, state: GatewayState, ctx: RequestContext) -> None:
    """Take an in-flight slot now that the body has arrived; `leave` gives it back."""
    if state.in_flight >= ctx.runtime.server.max_in_flight:
        raise overloaded(ctx)
    state.in_flight += 1
    state.watchdog.watch_sending(request, ctx, ctx.runtime.server.send_timeout_s)


def leave(request: web.Request, state: GatewayState) -> None:
    state.in_flight -= 1
    state.watchdog.stop_sending(request)


def close_connection(request: web.Request) -> None:
    """After a 408 has been written: close now (the response is flushed first) rather than let aiohttp
    linger up to 10 s reading the rest of a body that is already late."""
    if request.protocol is not None:
        request.protocol.force_close()

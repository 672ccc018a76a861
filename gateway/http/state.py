"""The app's typed state: the current runtime snapshot and per-process counters."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.runtime import Runtime


@dataclass(slots=True)
class GatewayState:
    runtime: Runtime
    config_path: str
    in_flight: int = 0
    draining: bool = False
    drain_deadline: float = 0.0  # monotonic: requests still running then are cut by the server
    reloads: int = 0
    reload_errors: int = 0
    last_reload_error: str | None = None


STATE: web.AppKey[GatewayState] = web.AppKey("gateway_state", GatewayState)

"""The app's typed state: the current runtime snapshot and per-process counters."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from gateway.http.watchdog import ClientWatchdog
from gateway.runtime import Runtime


@dataclass(slots=True)
class GatewayState:
    runtime: Runtime
    config_path: str
    in_flight: int = 0  # requests whose body has arrived and that are being served
    reading: int = 0  # requests still receiving their body
    open_by_key: dict[str, int] = field(default_factory=dict)  # key id -> reading + in flight (no zeros)
    watchdog: ClientWatchdog = field(default_factory=ClientWatchdog)  # body and send time bounds
    draining: bool = False
    drain_deadline: float = 0.0  # monotonic: requests still running then are cut by the server
    reloads: int = 0
    reload_errors: int = 0
    last_reload_error: str | None = None


STATE: web.AppKey[GatewayState] = web.AppKey("gateway_state", GatewayState)

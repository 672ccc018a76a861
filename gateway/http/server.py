"""Process model: one worker serves on uvloop; N workers share the port with SO_REUSEPORT.

A worker drains on SIGTERM/SIGINT (stops accepting, lets in-flight requests finish within
`drain_timeout_s`, flushes the recorder) and reloads its config on SIGHUP. The supervisor starts the
workers, forwards SIGTERM/SIGINT/SIGHUP to them, and restarts a worker that dies unexpectedly. It also
owns the instance's shared metrics directory (`gateway.records.multiproc`): made before the first
worker starts, a dead worker's gauges removed from it, and the whole directory removed at exit. With
`[server] watch_config = true` each worker also reloads when a config file's mtime or size changes.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.config.exposure import demo_key_refusal
from gateway.config.loader import LoadedConfig, load_config
from gateway.config.validate import ConfigError
from gateway.http.state import STATE
from gateway.logs import setup_logging

log = logging.getLogger("gateway.server")

WATCH_INTERVAL_S = 1.0
# The address `run_worker` binds: a reload is refused on it as `gateway serve` would refuse to start
# (the demo key off loopback). Absent in apps built without a listener (tests' in-process servers).
BIND_HOST = web.AppKey("bind_host", str)


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


_reload_lock: asyncio.Lock | None = None


async def reload_config(app: web.Application) -> bool:
    """Re-read and recompile the config off the loop; swap it in only when all of it is valid."""
    global _reload_lock
    if _reload_lock is None:
        _reload_lock = asyncio.Lock()
    # A SIGHUP and a file change at once: one reload after the other, each from the newest runtime.
    async with _reload_lock:
        return await _reload(app)


async def _reload(app: web.Application) -> bool:
    from gateway.runtime import Runtime, compile_runtime, start_runtime

    state = app[STATE]
    old = state.runtime

    host = app.get(BIND_HOST)

    def build() -> Runtime:  # off the loop: reads `old`, changes nothing the loop uses
        loaded = load_config(state.config_path)
        refusal = demo_key_refusal(loaded, host) if host is not None else None
        if refusal:
            raise ConfigError(state.config_path, "keys", refusal)
        return compile_runtime(loaded, old.services, old.generation + 1, previous=old)

    try:
        new = await asyncio.get_running_loop().run_in_executor(None, build)
    except ConfigError as exc:
        state.reload_errors += 1
        state.last_reload_error = str(exc)
        log.error("reload refused, keeping generation %d: %s", old.generation, exc,
                  extra={"event": "reload_failed", "generation": old.generation, "reason": str(exc)})
        return False
    except Exception as exc:
        state.reload_errors += 1
        state.last_reload_error = f"{type(exc).__name__}: {exc}"
        log.exception("reload failed, keeping generation %d", old.generation,
                      extra={"event": "reload_failed", "generation": old.generation, "reason": type(exc).__name__})
        return False
    await start_runtime(new)
    state.runtime = new
    state.reloads += 1
    log.info("config reloaded: generation %d", new.generation, extra={"event": "reload", "generation": new.generation})
    return True


def config_signature(loaded: LoadedConfig) -> tuple:
    """(path, mtime, size) of the main file and every policy file its globs match now (a new file too).
    Blocking (glob, stat): call it in a thread."""
    paths = {loaded.path, *loaded.policy_files}
    for pattern in loaded.main.policies:
        paths.update(glob.glob(os.path.join(loaded.base_dir, pattern)))
    sig = []
    for path in sorted(paths):
        try:
            st = os.stat(path)
            sig.append((path, st.st_mtime_ns, st.st_size))
        except OSError:
            sig.append((path, None, None))
    return tuple(sig)


async def _config_watcher(app: web.Application) -> AsyncIterator[None]:
    """With `[server] watch_config = true`, reload when a config file changes (checked each second)."""

    async def watch() -> None:
        state = app[STATE]
        last = await asyncio.to_thread(config_signature, state.runtime.config)
        seen = last
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            if not state.runtime.server.watch_config:
                continue
            sig = await asyncio.to_thread(config_signature, state.runtime.config)
            # Reload once a change has stood still for one interval: an editor's save is often a
            # truncate and a write, and the half-written file would only be refused.
            if sig != last and sig == seen:
                last = sig
                log.info("config files changed; reloading")
                await reload_config(app)
            seen = sig

    task = asyncio.create_task(watch(), name="config-watcher")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _on_startup(app: web.Application) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(reload_config(app)))
    # Replaces aiohttp's handler, which closes the listener at once: first turn unready, then drain.
    loop.add_signal_handler(signal.SIGTERM, _begin_stop, app, loop)


def _begin_stop(app: web.Application, loop: asyncio.AbstractEventLoop) -> None:
    """SIGTERM: /health/ready answers 503 while the listener still serves for `unready_before_drain_s`,
    so a balancer that health-checks stops sending first; then aiohttp closes the listener and drains."""
    state = app[STATE]
    if state.draining:
        return
    state.draining = True
    state.drain_deadline = float("inf")  # not cut before the drain proper starts (set in _on_shutdown)
    delay = state.runtime.config.main.server.unready_before_drain_s
    log.info("SIGTERM: unready; draining in %gs", delay, extra={"event": "drain", "phase": "unready", "delay_s": delay})
    loop.call_later(delay, _graceful_exit)


def _graceful_exit() -> None:
    from aiohttp.web_runner import GracefulExit

    raise GracefulExit()  # what aiohttp's own handler raises: run_app then stops the sites and drains


async def _on_shutdown(app: web.Application) -> None:
    # aiohttp runs this, then waits up to shutdown_timeout (drain_timeout_s) before cancelling handlers.
    state = app[STATE]
    state.draining = True
    state.drain_deadline = time.monotonic() + state.runtime.config.main.server.drain_timeout_s
    log.info("draining: %d requests in flight, waiting up to %gs", state.in_flight,
             state.runtime.config.main.server.drain_timeout_s,
             extra={"event": "drain", "phase": "draining", "in_flight": state.in_flight})


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_worker(config_path: str, host: str, port: int, reuse_port: bool) -> int:
    # Until the loop's handler is installed (at start-up), a SIGHUP (a reload the supervisor forwards)
    # would kill a starting worker; the config it is loading is the newest anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from gateway.http.app import build_app

    _install_uvloop()
    setup_logging()
    try:
        loaded = load_config(config_path)
        setup_logging(loaded.main.logs.format)
        app = build_app(loaded)
    except ConfigError as exc:
        log.error("config error: %s", exc, extra={"event": "config_error"})
        return 1
    app[BIND_HOST] = host
    app.on_startup.append(_on_startup)
    app.cleanup_ctx.append(_config_watcher)
    app.on_shutdown.append(_on_shutdown)
    drain = loaded.main.server.drain_timeout_s
    # aiohttp calls `print` once the socket is bound: say where, in a URL a user can paste.
    web.run_app(app, host=host, port=port, reuse_port=reuse_port or None, access_log=None,
                shutdown_timeout=drain, handler_cancellation=True, backlog=2048,
                print=lambda *_: log.info("serving on %s (pid %d)", url_of(host, port), os.getpid(),
                                          extra={"event": "startup", "address": url_of(host, port)}))
    return 0


def _worker_main(config_path: str, host: str, port: int) -> None:
    sys.exit(run_worker(config_path, host, port, reuse_port=True))


def run_supervisor(config_path: str, host: str, port: int, workers: int) -> int:
    from gateway.records import multiproc

    # Workers inherit the variable: prometheus_client reads it when they import it (multiprocess mode).
    shared = os.environ[multiproc.ENV] = multiproc.create_instance_dir()
    try:
        return _supervise(config_path, host, port, workers, shared)
    finally:
        multiproc.remove_instance_dir(shared)


def _supervise(config_path: str, host: str, port: int, workers: int, shared: str) -> int:
    from gateway.records import multiproc

    ctx = mp.get_context("spawn")
    procs: list[mp.Process] = []
    stopping = False

    def start() -> mp.Process:
        p = ctx.Process(target=_worker_main, args=(config_path, host, port), daemon=False)
        p.start()
        return p

    def forward(signum, _frame) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for p in procs:
            if p.is_alive() and p.pid:
                try:
                    import os

                    os.kill(p.pid, signum)
                except ProcessLookupError:
                    pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    procs.extend(start() for _ in range(workers))
    log.info("serving on %s with %d workers", url_of(host, port), workers,
             extra={"event": "startup", "address": url_of(host, port), "workers": workers})
    while True:
        time.sleep(0.2)
        if stopping:
            for p in procs:
                p.join()
            return 0
        for i, p in enumerate(procs):
            if not p.is_alive():
                log.warning("worker pid %s exited with %s; starting a new one", p.pid, p.exitcode,
                            extra={"event": "worker_restart", "worker_pid": p.pid, "exit_code": p.exitcode})
                if p.pid is not None:
                    multiproc.mark_dead(shared, p.pid)
                procs[i] = start()

"""Redis for the suite: a real `redis-server` on a free loopback port, never the shared one.

Fixtures: `redis_server` (one per session), `redis_url` (that server, flushed before the test),
`store` (parametrised: the same test body runs on `memory://` and on `redis://`), and
`RedisServer` for tests that stop and restart their own server.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


from tests.support.processes import free_port  # noqa: E402  (one allocator: see its comment)


class RedisServer:
    """A throwaway redis-server: no persistence, its own port and directory."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="gw-redis-")
        self._proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self._proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self._dir, "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(5)
            self._proc = None

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"FLUSHALL\r\n")
            s.recv(16)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server):
    redis_server.flush()
    return redis_server.url


@pytest.fixture(params=["memory", "redis"])
async def store(request):
    """The same test body against both stores."""
    from gateway.store import open_store

    url = "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")
    # open_store does start-up file I/O (redis-py reads its own version): off the loop, as at start-up.
    s = await asyncio.to_thread(open_store, url)
    yield s
    await s.close()

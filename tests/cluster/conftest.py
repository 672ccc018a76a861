"""A local three-master Redis Cluster on free loopback ports, one per module that asks for it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time

import pytest

from tests.conftest_redis import REDIS_SERVER

REDIS_CLI = shutil.which("redis-cli")


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too: the kernel's ephemeral
    range goes past 55535, where a node cannot start."""
    import random
    import socket

    for _ in range(200):
        port = random.randrange(20000, 30000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a cluster node")


class RedisCluster:
    def __init__(self, masters: int = 3) -> None:
        self.ports = [cluster_port() for _ in range(masters)]
        self.dir = tempfile.mkdtemp(prefix="gw-cluster-")
        self.procs: list[subprocess.Popen] = []
        self.url = f"redis://127.0.0.1:{self.ports[0]}/0?cluster=1"

    def start(self) -> RedisCluster:
        for port in self.ports:
            self.procs.append(subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "2000",
                 "--save", "", "--appendonly", "no", "--dir", self.dir, "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        for port in self.ports:
            self._cli(port, "PING", expect="PONG")
        out = subprocess.run([REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                              "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout[-1500:]} {out.stderr[-500:]}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in self._cli(p, "CLUSTER", "INFO") for p in self.ports):
                return self
            time.sleep(0.1)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    def _cli(self, port: int, *args: str, expect: str | None = None) -> str:
        deadline = time.monotonic() + 10
        while True:
            out = subprocess.run([REDIS_CLI, "-p", str(port), *args], capture_output=True, text=True, timeout=10)
            if expect is None or expect in out.stdout or time.monotonic() > deadline:
                return out.stdout
            time.sleep(0.05)

    def keys(self) -> list[str]:
        return [k for p in self.ports for k in self._cli(p, "--scan").split()]

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_cluster():
    if REDIS_CLI is None:
        pytest.skip("redis-cli is not installed (it comes with redis-server): no local Redis Cluster")
    cluster = RedisCluster().start()
    yield cluster
    cluster.close()

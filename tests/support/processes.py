"""Run `gateway serve` as a real process (several, for multi-instance tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# Under pytest-xdist each worker hands out ports from a range of its own, in turn, below the kernel's
# ephemeral range (32768 and up): a port picked here is bound later by a server process, and two workers
# handed the same free port could both bind it (address-reusing listeners; with --workers, SO_REUSEPORT),
# splitting one test's connections with another's. Without xdist the kernel picks (bind to port 0).
_RANGE = 3000
_next = [0]


def free_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not worker[2:].isdigit():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    base = 20000 + int(worker[2:]) * _RANGE
    for _ in range(_RANGE):
        port = base + _next[0] % _RANGE
        _next[0] += 1
        with socket.socket() as s:
            try:  # not listening (a SO_REUSEPORT listener refuses a plain bind too) and not in use
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {base}-{base + _RANGE - 1}")


class GatewayProcess:
    """`gateway serve` in a real process; with `log`, its stdout and stderr go to that file."""

    def __init__(self, config: Path, port: int | None = None, workers: int = 1, env: dict | None = None,
                 stdout=subprocess.DEVNULL, *, host: str | None = None, log: Path | None = None,
                 wait: bool = True) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(self.port)]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        if host:
            cmd += ["--host", host]
        self._fh = open(log, "wb") if log is not None else None
        out, err = (self._fh, subprocess.STDOUT) if self._fh is not None else (stdout, subprocess.PIPE)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        if wait:
            self.wait_ready()

    def output(self) -> str:
        """What the process printed so far (log file), or its stderr once it exited."""
        if self._fh is not None:
            if not self._fh.closed:
                self._fh.flush()
            return self.log.read_bytes().decode(errors="replace")
        if self.proc.poll() is not None and self.proc.stderr is not None:
            return self.proc.stderr.read().decode(errors="replace")
        return ""

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.output()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gateway did not become healthy")

    _wait_ready = wait_ready

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._fh is not None:
            self._fh.close()
        return self.proc.returncode

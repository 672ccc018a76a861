"""A real `gateway serve` process whose stdout and stderr go to one log file the test can read."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.processes import ROOT, free_port


class LoggedGateway:
    def __init__(self, config: Path, log: Path, *, workers: int = 1, env: dict | None = None,
                 host: str | None = None, wait: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(self.port)]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        if host:
            cmd += ["--host", host]
        self._fh = open(log, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._fh, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        if wait:
            self.wait_ready()

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

    def output(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_bytes().decode(errors="replace")

    def children(self) -> list[int]:
        """Worker pids of a supervisor (its spawned children, not multiprocessing's helpers)."""
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.proc.pid and fields[0] != "Z" and b"spawn_main" in cmdline:
                out.append(int(entry))
        return sorted(out)

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._fh.close()
        return self.proc.returncode

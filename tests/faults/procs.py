"""A real `gateway serve` process whose stdout and stderr go to one log file the test can read."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.processes import GatewayProcess


class LoggedGateway(GatewayProcess):
    def __init__(self, config: Path, log: Path, *, workers: int = 1, env: dict | None = None,
                 host: str | None = None, wait: bool = True) -> None:
        super().__init__(config, workers=workers, env=env, host=host, log=log, wait=wait)

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

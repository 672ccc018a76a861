"""One instance, many workers: the per-instance directory where workers share their metrics and /stats.

`gateway serve --workers N` makes one directory per instance before it starts the workers and names it
in `PROMETHEUS_MULTIPROC_DIR`, the variable `prometheus_client` reads when it is imported: every
worker's counters, histograms and gauges then live in memory-mapped files there (`prometheus_client`'s
multiprocess mode), and whichever worker answers `/metrics` reads all of them, so a scrape shows the
whole instance. A worker killed outright loses nothing it had counted (the files are its memory), and
its successor, a new pid, adds its own files: counters summed over every file stay monotonic across
worker restarts. When a worker dies the supervisor removes its live-gauge files (`mark_dead`), so
gauges count live workers only; the directory goes when the instance stops.

The same directory carries each worker's `/stats` windows (`stats-<pid>.json`, rewritten every
second by the worker): the worker answering `/stats` merges its own live windows with the others'.
A dead worker's file stays until its newest window is an hour old, so the requests it served still
count in the windows they fell in.
"""

from __future__ import annotations

import fcntl
import glob
import logging
import os
import shutil
import tempfile
import time

import orjson

log = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
STATS_MAX_AGE_S = 3700.0  # an hour of minute windows, plus a margin


def directory() -> str | None:
    """The instance's shared directory, when this process is one worker of several."""
    return os.environ.get(ENV) or None


def create_instance_dir() -> str:
    """A fresh, private directory for one instance (the supervisor's, before it starts workers)."""
    return tempfile.mkdtemp(prefix="gateway-metrics-")


def mark_dead(path: str, pid: int) -> None:
    """A worker exited: its live gauges no longer count (its counters and histograms still do)."""
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid, path)
    except OSError:
        log.warning("could not remove the gauges of worker %d from %s", pid, path, exc_info=True)


def remove_instance_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _stats_path(path: str, pid: int) -> str:
    return os.path.join(path, f"stats-{pid}.json")


def write_stats(path: str, data: dict) -> None:
    """This worker's /stats windows, replaced atomically (a reader never sees half a file). Blocking."""
    final = _stats_path(path, os.getpid())
    tmp = final + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS))
    os.replace(tmp, final)


def read_peer_stats(path: str) -> list[dict]:
    """The other workers' /stats windows (live and dead ones). Blocking: call it in a thread."""
    mine = _stats_path(path, os.getpid())
    out = []
    now = time.time()
    for name in glob.glob(os.path.join(path, "stats-*.json")):
        if name == mine:
            continue
        try:
            if now - os.stat(name).st_mtime > STATS_MAX_AGE_S:
                os.unlink(name)  # every window in it has ended
                continue
            with open(name, "rb") as fh:
                out.append(orjson.loads(fh.read()))
        except (OSError, orjson.JSONDecodeError):
            continue  # replaced or removed while read: next time
    return out


class Lease:
    """One worker of the instance at a time holds it (an exclusive lock on a file in the directory):
    the alert evaluator runs there. The kernel releases it when its holder dies, and the next worker
    to ask takes it."""

    def __init__(self, path: str, name: str) -> None:
        self._path = os.path.join(path, f"{name}.lock")
        self._fd: int | None = None

    def held(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

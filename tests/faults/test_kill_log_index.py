"""kill -9 of a file-sink writer, at random moments and across rotations, leaves an index that finds every
record the files hold after the next start, and no row of a file that rotation deleted.

The writer is a real process (tests/support/log_writer.py: a `FileSink` with its SQLite index, the same
code the gateway's shipper runs) writing small rotated files; it is killed with SIGKILL a few times at
random moments (write, fsync, index commit, rotation), restarted each time from the last seq it printed
(the spool would replay from its cursor; the sink drops what the file already holds), and finally runs to
its end. A failure names the seed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.log_index_check import assert_index_complete

SEED = int(os.environ.get("KILL_TEST_SEED") or random.SystemRandom().randrange(1 << 30))
MAX_BYTES, MAX_FILES = 6000, 3
ROOT = Path(__file__).resolve().parents[2]


def writer(path: str, first: int, count: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_WRITER_PAUSE_S": "0.005"}
    return subprocess.Popen([sys.executable, "-m", "tests.support.log_writer", path, "w", str(first), str(count),
                             str(MAX_BYTES), str(MAX_FILES)], stdout=subprocess.PIPE, env=env, cwd=ROOT)


def test_sigkilled_writer_leaves_a_complete_index_after_restart(tmp_path):
    rnd = random.Random(SEED)
    path = str(tmp_path / "records.jsonl")
    total, shipped = 600, -1
    for kill in range(4):
        proc = writer(path, shipped + 1, total - shipped - 1)
        assert proc.stdout is not None
        # Wait for the writer to be under way (a random number of batches shipped), then kill it at a
        # random moment of its work. It is paced (5 ms a batch, ~80 batches a run), so the kill always lands
        # before its end, on a fast machine too.
        lines = [proc.stdout.readline() for _ in range(rnd.randint(1, 12))]
        assert all(lines), f"seed {SEED}: the writer died early"
        time.sleep(rnd.uniform(0.0, 0.005))
        os.kill(proc.pid, signal.SIGKILL)
        out = b"".join(lines) + proc.stdout.read()
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL, f"seed {SEED}: the writer ended before the kill"
        # Restart from what it reported shipped (the records after it may be in the file too: dropped as dups).
        shipped = int(out.split()[-1])
    proc = writer(path, shipped + 1, total - shipped - 1)
    proc.communicate(timeout=60)
    assert proc.returncode == 0, f"seed {SEED}"
    n = assert_index_complete(path, MAX_FILES)
    assert n > 0, f"seed {SEED}"

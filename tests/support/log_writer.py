"""A file-sink writer process for the request-log index's crash tests (tests/faults/test_kill_log_index.py).

    python -m tests.support.log_writer PATH WRITER FIRST COUNT MAX_BYTES MAX_FILES

Ships request records WRITER:FIRST .. FIRST+COUNT-1 through a real `FileSink` (and its SQLite index) in
batches of 7, printing the last seq shipped after each batch, so that a test can SIGKILL it at any point.
"""

from __future__ import annotations

import asyncio
import os
import sys

import orjson

from gateway.records.sinks import FileSink


PAUSE_S = float(os.environ.get("LOG_WRITER_PAUSE_S") or 0)


def line(writer: str, seq: int) -> bytes:
    return orjson.dumps({
        "v": 1, "type": "request", "request_id": f"r{seq % 97}", "time": 1_700_000_000 + seq * 0.25,
        "key_id": f"k{seq % 3}", "team": "t", "alias": "demo", "status": 429 if seq % 5 == 0 else 200,
        "block_reason": "rate_limit.requests" if seq % 5 == 0 else None, "guardrail_action": "allow",
        "latency_ms": 1.0, "ttft_ms": None, "writer": writer, "seq": seq, "pad": "x" * 200,
    })


async def main(path: str, writer: str, first: int, count: int, max_bytes: int, max_files: int) -> None:
    sink = FileSink(path, max_bytes=max_bytes, max_files=max_files, chain_key=None)
    await sink.open()
    seq = first
    while seq < first + count:
        batch = [(writer, s, line(writer, s)) for s in range(seq, min(seq + 7, first + count))]
        await sink.ship(batch)
        seq += len(batch)
        print(seq - 1, flush=True)
        if PAUSE_S:  # paced, so a test's kill lands mid-run however fast the machine is
            await asyncio.sleep(PAUSE_S)
    await sink.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5])))

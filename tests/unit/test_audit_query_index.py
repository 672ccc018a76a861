"""`gateway audit query` with --status classes and --action, through the request log's index when the sink
has one (file: SQLite; Redis: the sorted sets) and by a scan otherwise: the same records either way, and
exactly the ones the filters name. The CLI is synchronous: these tests run it outside any event loop."""

from __future__ import annotations

import asyncio
import os

import orjson
import pytest

from gateway.records.audit_cli import main
from gateway.records.log_index import index_path
from gateway.records.sinks import FileSink, RedisStreamSink

STREAM = "cli:audit"
N = 300


def record(seq: int) -> dict:
    status = (200, 200, 429, 502, 403, 0)[seq % 6]
    return {"v": 1, "type": "request", "request_id": f"r{seq % 40}", "time": 1_780_000_000 + seq,
            "key_id": f"k{seq % 3}", "team": "t", "alias": ("a", "b")[seq % 2], "model": "m", "status": status,
            "block_reason": {429: "rate_limit.requests", 403: "guardrail.pii"}.get(status),
            "guardrail_action": ("allow", "redact", "block")[seq % 3], "writer": "w", "seq": seq}


RECORDS = [record(s) for s in range(N)]
LINES = [("w", r["seq"], orjson.dumps(r)) for r in RECORDS]
ADMIN = orjson.dumps({"v": 1, "type": "admin", "action": "keys.create", "time": 1_780_000_001, "writer": "a",
                      "seq": 0})

CASES = [
    (["--status", "4xx"], lambda r: 400 <= r["status"] < 500),
    (["--status", "429"], lambda r: r["status"] == 429),
    (["--status", "5xx"], lambda r: r["status"] >= 500),
    (["--status", "0"], lambda r: r["status"] == 0),
    (["--action", "redact"], lambda r: r["guardrail_action"] == "redact"),
    (["--action", "block", "--status", "4xx", "--key", "k2"],
     lambda r: r["guardrail_action"] == "block" and r["status"] // 100 == 4 and r["key_id"] == "k2"),
    (["--reason", "guardrail", "--alias", "a"], lambda r: r["block_reason"] == "guardrail.pii" and r["alias"] == "a"),
    (["--request-id", "r7"], lambda r: r["request_id"] == "r7"),
    (["--status", "4xx", "--since", str(1_780_000_000 + 250)], lambda r: r["status"] // 100 == 4 and r["seq"] >= 250),
]


def conf(tmp_path, kind: str, url: str = "memory://") -> str:
    sink = (f'type = "file"\npath = "{tmp_path / "audit.jsonl"}"' if kind == "file"
            else f'type = "redis"\nstream = "{STREAM}"')
    path = tmp_path / "gateway.toml"
    path.write_text(f'[store]\nurl = "{url}"\n[audit]\nspool_dir = "{tmp_path / "spool"}"\n[[audit.sinks]]\n{sink}\n')
    return str(path)


def run(capsys, argv: list[str]) -> tuple[list[int], str]:
    assert main(argv) == 0
    out = capsys.readouterr()
    return [orjson.loads(x)["seq"] for x in out.out.splitlines()], out.err


def check(capsys, c: str, source: str, indexed: bool = True) -> None:
    for args, want in CASES:
        expected = [r["seq"] for r in RECORDS if want(r)]
        assert expected, args
        got, err = run(capsys, ["query", *args, "--config", c])
        scanned, scan_err = run(capsys, ["query", *args, "--no-index", "--config", c])
        assert got == scanned == expected, args
        assert (f"through the {source} sink's index" in err) is indexed, (args, err)
        assert "index" not in scan_err


def test_file_sink_indexed_and_scanned(tmp_path, capsys):
    c = conf(tmp_path, "file")
    sink = FileSink(str(tmp_path / "audit.jsonl"), max_bytes=10**8, max_files=3, chain_key=None)
    asyncio.run(sink.open())
    asyncio.run(sink.ship([("a", 0, ADMIN)] + LINES))
    asyncio.run(sink.close())
    check(capsys, c, "file")
    # a query that can match other records than requests scans (the admin record is found)
    got, err = run(capsys, ["query", "--key", "k1", "--config", c])
    assert "index" not in err and got == [r["seq"] for r in RECORDS if r["key_id"] == "k1"]
    # no index file: the same answers by a scan
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(index_path(sink.path) + suffix):
            os.unlink(index_path(sink.path) + suffix)
    check(capsys, c, "file", indexed=False)


def test_redis_sink_indexed_and_scanned(tmp_path, capsys, redis_url):
    c = conf(tmp_path, "redis", redis_url)

    async def fill(index: bool) -> None:
        sink = RedisStreamSink(redis_url, STREAM, maxlen=0, batch=100, index=index)
        await sink.open()
        await sink.ship([("a", 0, ADMIN)] + LINES)
        await sink.close()

    asyncio.run(fill(index=False))  # a stream without an index: scans
    check(capsys, c, "redis", indexed=False)
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    asyncio.run(fill(index=True))
    check(capsys, c, "redis")


@pytest.mark.parametrize("bad", [["--status", "4x"], ["--status", "600"], ["--action", "nuke"]])
def test_bad_filters_are_usage_errors(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as exc:
        main(["query", *bad, "--config", conf(tmp_path, "file")])
    assert exc.value.code == 2
    assert bad[0] in capsys.readouterr().err

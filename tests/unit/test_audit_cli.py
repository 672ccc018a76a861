"""`gateway audit verify|tail|query|trim` against a real config, file sink and Redis stream. The CLI
is synchronous, so these tests run it outside any event loop."""

import asyncio
import os
import sys
import time

import orjson
import redis

sys.path.insert(0, os.path.dirname(__file__))
from test_records_recorder import STREAM, make_ctx, redis_proc  # noqa: E402,F401  (fixture re-export)

from gateway.records.audit_cli import main  # noqa: E402
from gateway.records.recorder import Recorder  # noqa: E402


def write_config(tmp_path, url) -> str:
    path = tmp_path / "gateway.toml"
    path.write_text(f"""
[store]
url = "{url}"

[audit]
spool_dir = "{tmp_path / 'spool'}"
flush_interval_ms = 2

[[audit.sinks]]
type = "redis"
stream = "{STREAM}"

[[audit.sinks]]
type = "file"
path = "{tmp_path / 'audit.jsonl'}"
""")
    return str(path)


async def fill(tmp_path, url, n=40):
    import tomllib
    cfg = tomllib.loads((tmp_path / "gateway.toml").read_text())
    rec = Recorder.compile(cfg["audit"], file="gateway.toml")
    await rec.start(url)
    for i in range(n):
        c = make_ctx(i)
        if i % 2:
            c.principal.key_id = "key-b"
        rec.submit(c, 0.0)
    await rec.close()
    return rec


def test_verify_ok_then_tampered_file_and_stream(tmp_path, redis_proc, capsys):
    conf = write_config(tmp_path, redis_proc.url)
    rec = asyncio.run(fill(tmp_path, redis_proc.url))
    assert main(["verify", "--config", conf]) == 0
    assert "ok redis stream test:audit: 40 records" in capsys.readouterr().out

    path = tmp_path / "audit.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[12] = lines[12].replace(b'"req-12"', b'"req-13"')
    path.write_bytes(b"".join(lines))
    assert main(["verify", "--config", conf]) == 1
    out = capsys.readouterr().out
    assert f"audit.jsonl:13: writer={rec.writer} seq=12: hash mismatch" in out

    client = redis.Redis(port=redis_proc.port)
    victim = client.xrange(STREAM, count=21)[20][0]
    client.xdel(STREAM, victim)
    assert main(["verify", "--config", conf]) == 1
    assert "seq=21: gap: seq 20..20 missing" in capsys.readouterr().out


def test_trim_with_checkpoint_then_verify(tmp_path, redis_proc, capsys):
    conf = write_config(tmp_path, redis_proc.url)
    asyncio.run(fill(tmp_path, redis_proc.url, n=50))
    os.unlink(tmp_path / "audit.jsonl")
    # The file sink's records are gone without a checkpoint: its anchors say so.
    assert main(["verify", "--config", conf, "--source", "file"]) == 1
    assert "whole chain removed" in capsys.readouterr().out
    assert main(["trim", "--config", conf, "--keep", "20"]) == 0
    assert "trimmed 30 entries" in capsys.readouterr().out
    assert main(["verify", "--config", conf, "--source", "redis"]) == 0
    assert "21 records" in capsys.readouterr().out  # 20 kept + the checkpoint
    # A second trim carries the first checkpoint's claim forward.
    assert main(["trim", "--config", conf, "--keep", "5"]) == 0
    assert main(["verify", "--config", conf, "--source", "redis"]) == 0


def test_tail_and_query(tmp_path, redis_proc, capsys):
    conf = write_config(tmp_path, redis_proc.url)
    asyncio.run(fill(tmp_path, redis_proc.url))
    capsys.readouterr()
    assert main(["tail", "-n", "3", "--config", conf]) == 0
    got = [orjson.loads(x)["seq"] for x in capsys.readouterr().out.splitlines()]
    assert got == [37, 38, 39]
    assert main(["query", "--key", "key-b", "--since", "1h", "--model", "gpt-4o-mini", "--config", conf]) == 0
    got = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(got) == 20 and {r["key_id"] for r in got} == {"key-b"}
    assert main(["query", "--source", "file", "--key", "key-a", "--since", str(time.time() + 60), "--config", conf]) == 0
    assert capsys.readouterr().out == ""

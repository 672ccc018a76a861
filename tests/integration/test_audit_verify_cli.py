"""`gateway audit verify` and `audit query` as an operator runs them, on logs a real `gateway serve`
process wrote (file sink and Redis stream, HMAC chain): every way to cut or reshape the log that
leaves the remaining chain links intact must still be reported, and a clean log must verify clean
(clean shutdown, and kill -9 followed by a restart on the same spool)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import orjson
import pytest
import redis

from tests.conftest_redis import RedisServer
from tests.support.gateway import OTHER_KEY, TEST_KEY, UPSTREAM_SECRET, base_config, write_config
from tests.support.processes import ROOT, GatewayProcess

KEY_ENV = "TEST_AUDIT_KEY"
ENV = {KEY_ENV: "audit-chain-key-for-tests", "TEST_UPSTREAM_KEY": UPSTREAM_SECRET}
STREAM = "audit-cli"
MSGS = [{"role": "user", "content": "Say hello"}]


def config_text(redis_url: str) -> str:
    return base_config("http://127.0.0.1:9", extra=f"""
[store]
url = "{redis_url}"

[audit]
flush_interval_ms = 2
hmac_key_env = "{KEY_ENV}"
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
[[audit.sinks]]
type = "redis"
stream = "{STREAM}"
""")


def audit(cfg: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **(ENV if env is None else env)}
    return subprocess.run([sys.executable, "-m", "gateway", "audit", *args, "--config", str(cfg)],
                          cwd=ROOT, env=full, capture_output=True, text=True, timeout=120)


def serve(cfg: Path, ok: int, refused: int = 0) -> tuple[GatewayProcess, list[str]]:
    """A real gateway that answered `ok` requests (and `refused` 403s); returns their request ids."""
    gw = GatewayProcess(cfg, env=ENV)
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=TEST_KEY, max_retries=0)
    ids = [c.chat.completions.with_raw_response.create(model="demo", messages=MSGS).headers["x-request-id"]
           for _ in range(ok)]
    other = openai.OpenAI(base_url=gw.url + "/v1", api_key=OTHER_KEY, max_retries=0)
    for _ in range(refused):
        with pytest.raises(openai.PermissionDeniedError) as err:
            other.chat.completions.create(model="gpt", messages=MSGS)
        ids.append(err.value.response.headers["x-request-id"])
    return gw, ids


def file_records(cfg: Path) -> list[bytes]:
    path = cfg.parent / "audit" / "records.jsonl"
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def wait_for_records(cfg: Path, n: int) -> None:
    deadline = time.time() + 20
    while time.time() < deadline:
        if sum(b'"type":"request"' in x for x in file_records(cfg)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{n} records never reached the file sink")


def writer_of(line: bytes) -> str:
    return orjson.loads(line)["writer"]


class Log:
    """The log of two clean gateway runs (two writers), restored before each test that edits it."""

    def __init__(self, tmp: Path) -> None:
        self.redis = RedisServer().start()
        self.cfg = write_config(tmp, config_text(self.redis.url))
        self.ids: list[str] = []
        for run in range(2):
            gw, ids = serve(self.cfg, ok=30, refused=2 if run else 0)
            assert gw.stop() == 0
            self.ids += ids
        self.path = self.cfg.parent / "audit" / "records.jsonl"
        self.lines = self.path.read_bytes().splitlines(keepends=True)
        self.writers = list(dict.fromkeys(writer_of(x) for x in self.lines))
        assert len(self.writers) == 2 and len(self.lines) == 62
        self.anchor_dir = self.cfg.parent / "var" / "audit" / "spool" / "anchors"
        self.anchors = {p: p.read_bytes() for p in self.anchor_dir.glob("*.anchors")}
        assert len(self.anchors) == 2
        self.client = redis.Redis.from_url(self.redis.url)
        self._dump = {k: self.client.dump(k) for k in self.client.keys("*")}

    def restore(self) -> None:
        self.path.write_bytes(b"".join(self.lines))
        shutil.rmtree(self.anchor_dir, ignore_errors=True)
        self.anchor_dir.mkdir(parents=True)
        for p, data in self.anchors.items():
            p.write_bytes(data)
        self.client.flushall()
        for k, v in self._dump.items():
            self.client.restore(k, 0, v)

    def write(self, lines: list[bytes]) -> None:
        self.path.write_bytes(b"".join(lines))


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    made = Log(tmp_path_factory.mktemp("audit-log"))
    yield made
    made.redis.close()


@pytest.fixture
def fresh(log):
    log.restore()
    return log


def broken(result: subprocess.CompletedProcess, *needles: str) -> str:
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out, out
    for n in needles:
        assert n in out, out
    return out


def test_a_clean_log_verifies_clean(fresh):
    r = audit(fresh.cfg, "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"ok {fresh.path}" in r.stdout and f"ok redis stream {STREAM}" in r.stdout


def test_truncating_the_last_50_lines_is_reported(fresh):
    fresh.write(fresh.lines[:-50])
    # Both chains lost their tail (the first writer's last 18 records, the second writer's chain whole).
    out = broken(audit(fresh.cfg, "verify"), "missing", fresh.writers[0], fresh.writers[1])
    assert f"ok redis stream {STREAM}" in out  # the stream was not touched


def test_removing_one_writers_last_records_is_reported(fresh):
    first = [i for i, x in enumerate(fresh.lines) if writer_of(x) == fresh.writers[0]]
    drop = set(first[-10:])
    fresh.write([x for i, x in enumerate(fresh.lines) if i not in drop])
    broken(audit(fresh.cfg, "verify"), "missing", fresh.writers[0])


def test_removing_a_whole_writers_chain_is_reported(fresh):
    fresh.write([x for x in fresh.lines if writer_of(x) != fresh.writers[0]])
    broken(audit(fresh.cfg, "verify"), fresh.writers[0])


def test_xdel_of_the_last_stream_entry_is_reported(fresh):
    last = fresh.client.xrevrange(STREAM, count=1)[0][0]
    fresh.client.xdel(STREAM, last)
    out = broken(audit(fresh.cfg, "verify"), "missing", fresh.writers[1])
    assert f"ok {fresh.path}" in out


def test_removing_a_whole_writers_chain_from_the_stream_is_reported(fresh):
    for eid, fields in fresh.client.xrange(STREAM):
        if writer_of(fields[b"r"]) == fresh.writers[1]:
            fresh.client.xdel(STREAM, eid)
    broken(audit(fresh.cfg, "verify"), fresh.writers[1])


def test_the_redis_anchors_still_catch_a_cut_when_the_anchor_files_are_gone(fresh):
    shutil.rmtree(fresh.anchor_dir)
    last = fresh.client.xrevrange(STREAM, count=1)[0][0]
    fresh.client.xdel(STREAM, last)
    broken(audit(fresh.cfg, "verify", "--source", "redis"), "missing", fresh.writers[1])


def test_an_anchor_moved_or_forged_without_the_key_is_reported(fresh):
    path = sorted(fresh.anchors)[0]
    lines = path.read_bytes().splitlines(keepends=True)
    rec = orjson.loads(lines[0])
    # Claim a longer chain than the log holds, keeping the old signature.
    lines[0] = lines[0].replace(b'"seq":%d' % rec["seq"], b'"seq":%d' % (rec["seq"] + 5))
    path.write_bytes(b"".join(lines))
    broken(audit(fresh.cfg, "verify"), "anchor signature mismatch")


def test_serve_refuses_a_configured_chain_key_that_is_not_set(tmp_path, redis_url):
    cfg = write_config(tmp_path, config_text(redis_url))
    env = {k: v for k, v in ENV.items() if k != KEY_ENV}
    assert KEY_ENV not in os.environ
    with pytest.raises(RuntimeError) as err:
        GatewayProcess(cfg, env=env)
    assert f"hmac_key_env names {KEY_ENV}, which is not set" in str(err.value)


@pytest.mark.parametrize("edit", ["space after a comma", "space before the end", "tab at the start",
                                  "duplicate key", "escaped character"])
def test_bytes_that_are_not_the_canonical_record_are_reported(fresh, edit):
    lines = list(fresh.lines)
    line = lines[7]
    rec = orjson.loads(line)
    if edit == "space after a comma":
        line = line.replace(b'","', b'", "', 1)
    elif edit == "space before the end":
        line = line.rstrip(b"\n")[:-1] + b" }\n"
    elif edit == "tab at the start":
        line = b"\t" + line
    elif edit == "duplicate key":  # the same value twice: the parsed record, and so its hash, is unchanged
        line = b'{"status":' + str(rec["status"]).encode() + b"," + line[1:]
    else:  # "\u0064" is "d": the same string, other bytes
        line = line.replace(b'"demo"', b'"\\u0064emo"', 1)
    assert orjson.loads(line) == rec and line != lines[7]
    lines[7] = line
    fresh.write(lines)
    broken(audit(fresh.cfg, "verify"), "canonical", f"{fresh.path}:8")


def test_verify_without_the_key_variable_says_the_key_is_missing(fresh):
    env = {k: v for k, v in ENV.items() if k != KEY_ENV}
    saved = os.environ.pop(KEY_ENV, None)
    try:
        r = audit(fresh.cfg, "verify", env=env)
    finally:
        if saved is not None:
            os.environ[KEY_ENV] = saved
    out = r.stdout + r.stderr
    assert r.returncode == 3, out
    assert KEY_ENV in out and "not set" in out and "altered" not in out and "Traceback" not in out


def test_query_finds_records_by_request_id_status_reason_and_alias(fresh):
    rid = fresh.ids[-1]  # the last refused request of the second run
    r = audit(fresh.cfg, "query", "--request-id", rid)
    got = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0 and [x["request_id"] for x in got] == [rid], r.stdout + r.stderr
    for args in (["--status", "403"], ["--reason", "auth.model_not_allowed"], ["--reason", "auth"],
                 ["--alias", "gpt"]):
        for source in ("file", "redis"):
            r = audit(fresh.cfg, "query", "--source", source, *args)
            got = [orjson.loads(x) for x in r.stdout.splitlines()]
            assert r.returncode == 0, r.stderr
            assert sorted(x["request_id"] for x in got) == sorted(fresh.ids[-2:]), (args, source)
            assert {x["status"] for x in got} == {403}
    r = audit(fresh.cfg, "query", "--status", "200", "--alias", "demo")
    assert len(r.stdout.splitlines()) == 60


def test_query_into_head_ends_without_a_traceback(fresh, tmp_path):
    # Much more output than a pipe buffer holds, so the writes after `head` exits fail with EPIPE.
    big = tmp_path / "big" / "audit" / "records.jsonl"
    big.parent.mkdir(parents=True)
    big.write_bytes(b"".join(fresh.lines) * 200)
    cfg = write_config(big.parent.parent, config_text(fresh.redis.url).replace(f'stream = "{STREAM}"', 'stream = "x"'))
    for cmd in ("query --source file", "tail -n 100000 --source file"):
        sh = f"{sys.executable} -m gateway audit {cmd} --config {cfg} | head -1"
        r = subprocess.run(["bash", "-c", sh], cwd=ROOT, capture_output=True, text=True, timeout=120,
                           env={**os.environ, **ENV})
        assert r.returncode == 0 and orjson.loads(r.stdout)["type"] == "request", r.stdout[:200] + r.stderr
        assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


def test_kill_9_then_restart_verifies_clean_and_the_dead_writers_tail_is_anchored(tmp_path, redis_url):
    cfg = write_config(tmp_path, config_text(redis_url))
    gw, _ = serve(cfg, ok=20)
    wait_for_records(cfg, 20)
    time.sleep(1.5)  # a periodic anchor covers those 20
    r = audit(cfg, "verify")  # while it runs
    assert r.returncode == 0, r.stdout + r.stderr
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=TEST_KEY, max_retries=0)
    for _ in range(5):
        c.chat.completions.create(model="demo", messages=MSGS)
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait(10)
    dead = writer_of(file_records(cfg)[0])
    # Killed before its final anchor: the log still verifies; what follows the last anchor is reported
    # as not yet anchored, which is not a break.
    r = audit(cfg, "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    # A cut reaching into the anchored part is a break even without a successor.
    lines = file_records(cfg)
    mine = [x for x in lines if writer_of(x) == dead]
    path = cfg.parent / "audit" / "records.jsonl"
    saved = path.read_bytes()
    path.write_bytes(b"".join(x for x in lines if x not in mine[15:]))
    broken(audit(cfg, "verify"), "missing", dead)
    path.write_bytes(saved)

    # The successor adopts the dead writer's spool, ships what was left and anchors its whole chain.
    gw2, _ = serve(cfg, ok=3)
    assert gw2.stop() == 0
    r = audit(cfg, "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = file_records(cfg)
    mine = [x for x in lines if writer_of(x) == dead]
    assert [orjson.loads(x)["seq"] for x in mine] == list(range(len(mine))) and len(mine) >= 20
    path.write_bytes(b"".join(x for x in lines if x is not mine[-1]))
    broken(audit(cfg, "verify"), "missing", dead)
    shutil.rmtree(cfg.parent / "audit")

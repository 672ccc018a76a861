"""Hash chain verification: intact logs pass; an altered byte, a removed record, a reorder fail
naming the record; a trim with a checkpoint passes, the same trim without one fails."""

import asyncio

import orjson

from gateway.records.audit_cli import iter_file, verify
from gateway.records.chain import Chain, checkpoint_covers, checkpoint_record
from gateway.records.sinks import FileSink


def _lines(n, writer="w1", key=None, start=0):
    c = Chain(writer, key)
    out = []
    for i in range(n):
        out.append(c.seal({"v": 1, "type": "request", "request_id": f"r{i}", "tags": ["a"], "cost_usd": 0.1 * i,
                           "entities": {"EMAIL": i}}).rstrip(b"\n"))
    return out


def _check(lines, key=None):
    return verify(((f"f:{i + 1}", line) for i, line in enumerate(lines)), key)


def test_intact_log_verifies_with_two_interleaved_writers():
    a, b = _lines(50, "wa"), _lines(50, "wb")
    mixed = [x for pair in zip(a, b) for x in pair]
    n, broken = _check(mixed)
    assert broken is None and n == 100


def test_one_changed_byte_is_named():
    lines = _lines(20)
    rec = lines[7]
    i = rec.index(b'"r7"') + 2
    lines[7] = rec[:i] + b"X" + rec[i + 1:]
    _, broken = _check(lines)
    assert broken.where == "f:8" and broken.seq == 7 and "hash mismatch" in broken.problem


def test_every_single_byte_change_is_caught():
    lines = _lines(3)
    for i in range(len(lines[1])):
        changed = bytearray(lines[1])
        changed[i] = (changed[i] + 1) % 256
        _, broken = _check([lines[0], bytes(changed), lines[2]])
        assert broken is not None and broken.where == "f:2", i


def test_removed_record_is_a_gap():
    lines = _lines(10)
    del lines[4]
    _, broken = _check(lines)
    assert broken.seq == 5 and "gap: seq 4..4 missing" in broken.problem


def test_reorder_is_named():
    lines = _lines(10)
    lines[3], lines[4] = lines[4], lines[3]
    _, broken = _check(lines)
    assert broken.seq == 4 and "gap" in broken.problem or "reorder" in broken.problem


def test_hmac_key_is_needed_to_verify():
    lines = _lines(5, key=b"secret")
    assert _check(lines, b"secret")[1] is None
    assert "hash mismatch" in _check(lines, None)[1].problem


def test_recomputed_hash_without_key_fails_with_hmac():
    lines = _lines(3, key=b"secret")
    rec = orjson.loads(lines[2])
    rec["cost_usd"] = 99.0
    rec.pop("hash")
    forged = Chain("x", None)
    forged.prev_hash = rec["prev_hash"]
    forged.seq = rec["seq"]
    forged.writer = rec["writer"]
    lines[2] = forged.seal(rec).rstrip(b"\n")
    assert "hash mismatch" in _check(lines, b"secret")[1].problem


def test_trim_with_checkpoint_verifies_and_without_fails():
    a, b = _lines(30, "wa"), _lines(5, "wb")
    log = a[:10] + b + a[10:]
    removed, kept = log[:20], log[20:]
    ckpt = Chain("trimmer", None).seal(checkpoint_record(checkpoint_covers(removed))).rstrip(b"\n")
    assert _check(kept + [ckpt])[1] is None
    _, broken = _check(kept)
    assert "no checkpoint covers" in broken.problem and broken.writer == "wa"
    # A later deletion right after the trimmed range is still caught.
    _, broken = _check(kept[1:] + [ckpt])
    assert broken is not None and "no checkpoint" in broken.problem


def test_second_trim_carries_earlier_checkpoint_forward():
    a = _lines(30, "wa")
    t = Chain("trimmer", None)
    ck1 = t.seal(checkpoint_record(checkpoint_covers(a[:10]))).rstrip(b"\n")
    log = a[10:] + [ck1]
    ck2 = Chain("trimmer2", None).seal(checkpoint_record(checkpoint_covers(log[:10]))).rstrip(b"\n")
    assert _check(log[10:] + [ck2])[1] is None


async def test_file_sink_rotation_writes_checkpoints_and_verifies(tmp_path):
    path = str(tmp_path / "audit.jsonl")
    sink = FileSink(path, max_bytes=4096, max_files=2, chain_key=None)
    await sink.open()
    lines = _lines(300)
    for i in range(0, 300, 10):
        await sink.ship([(orjson.loads(x)["writer"], orjson.loads(x)["seq"], x) for x in lines[i:i + 10]])
    # Replaying the whole batch adds nothing (idempotent).
    assert await sink.ship([("w1", i, x) for i, x in enumerate(lines)]) == 0
    await sink.close()
    entries = await asyncio.to_thread(lambda: list(iter_file(path)))
    assert len(entries) < 300  # old files were removed
    n, broken = verify(iter(entries), None)
    assert broken is None, broken
    assert any(b'"checkpoint"' in line for _, line in entries)

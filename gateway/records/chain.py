"""The tamper-evident hash chain over audit records, and its verifier.

Each gateway process is one chain (`writer`). A record carries `seq`, `prev_hash` and `hash`, where
hash = SHA-256 (or HMAC-SHA256 with a key) of prev_hash + the record's canonical JSON without `hash`
(orjson, sorted keys). Retention removes whole ranges and leaves a checkpoint record naming, per chain
trimmed, the last removed seq and its hash, so the verifier can tell a trim from a deletion.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import socket
import time
from dataclasses import dataclass

import orjson

from gateway.records.schema import SCHEMA_VERSION

GENESIS = "0" * 64
_SORT = orjson.OPT_SORT_KEYS


def new_writer_id(role: str = "") -> str:
    base = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    return f"{base}:{role}" if role else base


def digest(key: bytes | None, prev_hash: str, body: bytes) -> str:
    if key:
        return hmac.new(key, prev_hash.encode() + body, hashlib.sha256).hexdigest()
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


class Chain:
    """Seals records in order. One per process for requests; one per trim run for checkpoints."""

    __slots__ = ("writer", "seq", "prev_hash", "_key")

    def __init__(self, writer: str, key: bytes | None = None) -> None:
        self.writer = writer
        self.seq = 0
        self.prev_hash = GENESIS
        self._key = key

    def seal(self, record: dict) -> bytes:
        """Add the chain fields and return the record as one JSON line (with its trailing newline)."""
        record["writer"] = self.writer
        record["seq"] = self.seq
        record["prev_hash"] = self.prev_hash
        body = orjson.dumps(record, option=_SORT)
        h = digest(self._key, self.prev_hash, body)
        record["hash"] = h
        self.seq += 1
        self.prev_hash = h
        # Key order in the stored line does not matter: the verifier re-serializes with sorted keys.
        return body[:-1] + b',"hash":"' + h.encode() + b'"}\n'


def checkpoint_covers(lines, covers: dict[str, tuple[int, str]] | None = None) -> dict[str, tuple[int, str]]:
    """Per chain, the last (seq, hash) among `lines` about to be removed, carrying forward what the
    checkpoints among them covered (a chain whose records were all trimmed earlier)."""
    covers = {} if covers is None else covers
    for line in lines:
        try:
            rec = orjson.loads(line)
            writer, seq, h = rec["writer"], rec["seq"], rec["hash"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # a damaged record cannot be vouched for; verify reports it if it stays
        if rec.get("type") == "checkpoint":
            for w, s, hh in rec.get("covers", ()):
                _keep_latest(covers, w, s, hh)
        _keep_latest(covers, writer, seq, h)
    return covers


def _keep_latest(covers: dict[str, tuple[int, str]], writer: str, seq: int, h: str) -> None:
    # A checkpoint stored after newer records of a chain must not pull its claim back.
    if writer not in covers or covers[writer][0] < seq:
        covers[writer] = (seq, h)


def checkpoint_record(covers: dict[str, tuple[int, str]], reason: str = "retention") -> dict:
    return {
        "v": SCHEMA_VERSION,
        "type": "checkpoint",
        "time": time.time(),
        "reason": reason,
        "covers": [[w, s, h] for w, (s, h) in sorted(covers.items())],
    }


def canonical_line(body: bytes, h: str) -> bytes:
    """The stored line for a record whose canonical JSON without `hash` is `body` (what `seal` writes)."""
    return body[:-1] + b',"hash":"' + h.encode() + b'"}'


@dataclass(frozen=True, slots=True)
class Anchor:
    """A writer's head as published outside the log (gateway.records.anchors): the log must hold it."""
    seq: int
    hash: str
    final: bool = False


@dataclass(frozen=True, slots=True)
class Break:
    where: str  # file:line or stream entry id
    writer: str | None
    seq: int | None
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: writer={self.writer} seq={self.seq}: {self.problem}"


class Verifier:
    """Feed lines in stored order; `feed` returns the first broken link it sees, `finish` checks chain
    starts against checkpoints (which may be stored after the records they vouch for)."""

    def __init__(self, key: bytes | None = None, anchors: dict[str, Anchor] | None = None) -> None:
        self._key = key
        self._anchors = anchors or {}
        self._anchor_seen: set[str] = set()
        self._last: dict[str, tuple[int, str]] = {}
        self._starts: list[tuple[str, str, int, str]] = []  # where, writer, seq, prev_hash
        self._claims: set[tuple[str, int, str]] = set()
        self.records = 0
        self.chains_seen: set[str] = set()

    def feed(self, line: bytes, where: str) -> Break | None:
        if not line.strip():
            return Break(where, None, None, "blank line (bytes that are not a record)")
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            return Break(where, None, None, "malformed JSON (record altered or truncated)")
        if not isinstance(rec, dict):
            return Break(where, None, None, "not a JSON object")
        writer, seq = rec.get("writer"), rec.get("seq")
        stored, prev = rec.pop("hash", None), rec.get("prev_hash")
        if not isinstance(writer, str) or not isinstance(seq, int) or not isinstance(stored, str) or not isinstance(prev, str):
            return Break(where, writer if isinstance(writer, str) else None, seq if isinstance(seq, int) else None,
                         "missing or malformed chain fields")
        self.records += 1
        self.chains_seen.add(writer)
        body = orjson.dumps(rec, option=_SORT)
        if digest(self._key, prev, body) != stored:
            return Break(where, writer, seq, "hash mismatch (record altered)")
        # The hash covers the parsed record, so bytes that parse to the same record (whitespace,
        # a duplicated key, an escaped character, another key order) must be refused here.
        if line != canonical_line(body, stored):
            return Break(where, writer, seq, "not the canonical serialisation of the record (bytes added or rewritten)")
        last = self._last.get(writer)
        if last is None:
            if seq != 0 or prev != GENESIS:
                self._starts.append((where, writer, seq, prev))
        else:
            lseq, lhash = last
            if seq <= lseq:
                return Break(where, writer, seq, f"reorder or duplicate: seq {seq} after seq {lseq}")
            if seq != lseq + 1:
                return Break(where, writer, seq, f"gap: seq {lseq + 1}..{seq - 1} missing (records deleted)")
            if prev != lhash:
                return Break(where, writer, seq, f"prev_hash does not match the hash of seq {lseq}")
        self._last[writer] = (seq, stored)
        anchor = self._anchors.get(writer)
        if anchor is not None and anchor.seq == seq:
            if anchor.hash != stored:
                return Break(where, writer, seq, "differs from the anchored head at this seq (chain rewritten)")
            self._anchor_seen.add(writer)
        if rec.get("type") == "checkpoint":
            for c in rec.get("covers", ()):
                if isinstance(c, list) and len(c) == 3:
                    self._claims.add((c[0], c[1], c[2]))
        return None

    def finish(self) -> Break | None:
        broken = self.finish_all()
        return broken[0] if broken else None

    def finish_all(self) -> list[Break]:
        """Every break found after the last line: uncovered chain starts, then every missing anchored head."""
        return self._check_starts() + self._check_anchors()

    def _check_starts(self) -> list[Break]:
        for where, writer, seq, prev in self._starts:
            if seq == 0:
                return [Break(where, writer, seq, "seq 0 with a prev_hash other than genesis")]
            if (writer, seq - 1, prev) not in self._claims:
                return [Break(where, writer, seq,
                              f"chain starts at seq {seq} and no checkpoint covers seq {seq - 1} (records deleted)")]
        return []

    def _check_anchors(self) -> list[Break]:
        out: list[Break] = []
        covered: dict[str, int] = {}
        for w, s, _ in self._claims:
            covered[w] = max(covered.get(w, -1), s)
        for writer, a in sorted(self._anchors.items()):
            if writer in self._anchor_seen or (writer, a.seq, a.hash) in self._claims or covered.get(writer, -1) > a.seq:
                continue  # present, or trimmed away under a checkpoint
            last = self._last.get(writer)
            where = f"anchor of {writer}"
            if last is None:
                out.append(Break(where, writer, a.seq, f"anchored at seq {a.seq} but none of its records is in "
                                                       "the log (whole chain removed)"))
            elif last[0] < a.seq:
                out.append(Break(where, writer, a.seq, f"anchored head seq {a.seq} is missing: the log ends at "
                                                       f"seq {last[0]} (records removed from the tail)"))
            else:
                out.append(Break(where, writer, a.seq, f"anchored head seq {a.seq} is not in the log"))
        return out

    def unanchored(self) -> dict[str, int]:
        """Per chain without a final anchor: how many of its records follow its last anchor (all of
        them when it has none). A cut there cannot be told from a writer that stopped there."""
        out = {}
        for writer, (seq, _) in self._last.items():
            a = self._anchors.get(writer)
            if writer.endswith(":checkpoint") or (a is not None and a.final and a.seq >= seq):
                continue
            n = seq - (a.seq if a is not None else -1)
            if n > 0:
                out[writer] = n
        return out

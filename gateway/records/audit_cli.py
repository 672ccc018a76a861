"""`gateway audit ...`: verify the hash chains in the configured sinks, tail and query records, and
trim the Redis stream with a checkpoint.

    gateway audit verify --config C           exit 1 at the first broken link or missing anchored head
    gateway audit tail [-n N] [--follow] --config C
    gateway audit query [--request-id R] [--key K] [--since T] [--model M] [--alias A] [--team T]
                        [--status S] [--reason R] [--action A] [--no-index] --config C
        --status: a class (2xx, 4xx, 5xx), a code (429) or 0; through the request log's index when the
        sink has one (gateway.records.audit_query), a scan otherwise
    gateway audit trim (--keep N | --before T) --config C

Exit status: 0 ok, 1 broken (verify), 2 config or usage error, 3 the chain key's variable is not set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Iterator

import orjson

from gateway.records.anchors import anchors_key, iter_anchor_files, read_anchors
from gateway.records.chain import Anchor, Chain, Verifier, checkpoint_covers, checkpoint_record, new_writer_id
from gateway.records.audit_query import file_lines, plan, redis_lines
from gateway.records.config import AuditConfig, parse_audit, sink_of
from gateway.records.log_query import ACTIONS, STATUS_PATTERN, status_matches
from gateway.records.recorder import env_key
from gateway.records.sinks import rotated_paths, split_cluster_url
from gateway.config.validate import ConfigError

PAGE = 1000
KEY_MISSING = 3


def _load(path: str) -> tuple[AuditConfig, str | None]:
    from gateway.config.loader import load_config

    loaded = load_config(path)
    return parse_audit(loaded.main.audit, file=loaded.path, base_dir=loaded.base_dir), loaded.main.store.url


def _redis(cfg: AuditConfig, store_url: str | None):
    rs = sink_of(cfg, "redis")
    if rs is None:
        return None, None
    import redis
    url = rs.url or store_url
    if not url or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("<config>", "audit.sinks.redis.url", "a redis:// URL (or a redis [store] url)")
    url, cluster = split_cluster_url(url)
    return (redis.RedisCluster if cluster else redis.Redis).from_url(url), rs.stream


def iter_file(path: str, max_files: int = 1000) -> Iterator[tuple[str, bytes]]:
    for p in rotated_paths(path, max_files):
        with open(p, "rb") as fh:
            for n, line in enumerate(fh, 1):
                yield f"{p}:{n}", line.rstrip(b"\n")  # blank lines too: verify refuses them


def iter_stream(client, stream: str, start: str = "-", end: str = "+") -> Iterator[tuple[str, bytes]]:
    while True:
        page = client.xrange(stream, start, end, count=PAGE)
        for eid, fields in page:
            yield f"{stream}@{eid.decode()}", fields[b"r"]
        if len(page) < PAGE:
            return
        start = "(" + page[-1][0].decode()


def verify(entries: Iterator[tuple[str, bytes]], key: bytes | None,
           anchors: dict[str, Anchor] | None = None) -> tuple[int, object]:
    """(records read, the first break or None)."""
    v, broken = verify_all(entries, key, anchors)
    return v.records, (broken[0] if broken else None)


def verify_all(entries: Iterator[tuple[str, bytes]], key: bytes | None,
               anchors: dict[str, Anchor] | None = None) -> tuple[Verifier, list]:
    """The first broken link; or, when every link holds, every uncovered start and missing anchored head."""
    v = Verifier(key, anchors)
    for where, line in entries:
        broken = v.feed(line, where)
        if broken is not None:
            return v, [broken]
    return v, v.finish_all()


def _sources(cfg: AuditConfig, store_url: str | None, which: str | None = None) -> list[tuple[str, str, callable]]:
    """(name, sink, entries) per configured durable sink."""
    out = []
    fs = sink_of(cfg, "file")
    if fs is not None and which in (None, "file"):
        out.append((fs.path, "file", lambda: iter_file(fs.path)))
    client, stream = _redis(cfg, store_url) if which in (None, "redis") else (None, None)
    if client is not None:
        out.append((f"redis stream {stream}", "redis", lambda: iter_stream(client, stream)))
    return out


def _anchor_lines(cfg: AuditConfig, store_url: str | None, sink: str) -> Iterator[tuple[str, bytes]]:
    yield from iter_anchor_files(cfg.anchor_dir)
    if sink == "redis":
        client, stream = _redis(cfg, store_url)
        key = anchors_key(stream)
        for field, line in sorted(client.hgetall(key).items()):
            yield f"{key}[{field.decode(errors='replace')}]", line


def key_missing(cfg: AuditConfig) -> str | None:
    """Without the key every record would read as altered: say what is wrong instead."""
    if cfg.hmac_key_env and not os.environ.get(cfg.hmac_key_env):
        return (f"audit chain key missing: [audit] hmac_key_env names {cfg.hmac_key_env}, which is not set; "
                "set it to the key the gateway signs records with")
    return None


def parse_time(text: str) -> float:
    """Unix seconds, ISO 8601, or an age such as 30s, 15m, 2h, 7d."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(text[:-1]) * units[text[-1]]
    try:
        return float(text)
    except ValueError:
        t = dt.datetime.fromisoformat(text)
        return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp()


def _cmd_verify(cfg, store_url, args) -> int:
    missing = key_missing(cfg)
    if missing:
        print(missing, file=sys.stderr)
        return KEY_MISSING
    key = env_key(cfg.hmac_key_env)
    sources = _sources(cfg, store_url, args.source)
    if not sources:
        print("no file or redis audit sink configured", file=sys.stderr)
        return 2
    status = 0
    for name, sink, it in sources:
        # Anchors first: the log read afterwards holds at least what they name.
        anchors, refused = read_anchors(_anchor_lines(cfg, store_url, sink), key, sink)
        for problem in refused:
            print(f"BROKEN {name}: {problem}")
            status = 1
        v, broken = verify_all(it(), key, anchors)
        for b in broken:
            print(f"BROKEN {name}: {b}")
        if broken:
            status = 1
            continue
        print(f"ok {name}: {v.records} records, {len(v.chains_seen)} chains, {len(anchors)} anchored heads present")
        for writer, n in sorted(v.unanchored().items()):
            print(f"  not yet anchored: writer={writer}: last {n} records (running, or stopped without a "
                  "final anchor: a cut there cannot be told apart)")
    return status


def _parse(line: bytes) -> dict:
    """A record to filter; a line that is not one matches nothing (verify is the tool that reports it)."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {"type": None}
    return rec if isinstance(rec, dict) else {"type": None}


def _matches(rec: dict, args) -> bool:
    if rec.get("type") is None:
        return False
    if rec.get("type") != "request" and (args.request_id or args.status is not None or args.reason or args.alias
                                         or args.action):
        return False
    if args.request_id and rec.get("request_id") != args.request_id:
        return False
    if args.status is not None and not status_matches(int(rec.get("status") or 0), args.status):
        return False
    if args.action and rec.get("guardrail_action") != args.action:
        return False
    if args.reason and not _reason_matches(rec.get("block_reason"), args.reason):
        return False
    if args.alias and rec.get("alias") != args.alias:
        return False
    if args.key and rec.get("key_id") != args.key:
        return False
    if args.team and rec.get("team") != args.team:
        return False
    if args.model and args.model not in (rec.get("model"), rec.get("alias")):
        return False
    if args.since is not None and rec.get("time", 0) < args.since:
        return False
    return True


def _reason_matches(reason: str | None, wanted: str) -> bool:
    """A reason code or its family: `auth` matches `auth.model_not_allowed`."""
    return reason is not None and (reason == wanted or reason.startswith(wanted + "."))


def _status(text: str) -> str:
    if not STATUS_PATTERN.match(text):
        raise argparse.ArgumentTypeError("a class (2xx, 4xx, 5xx), a code such as 429, or 0")
    return text


def _cmd_tail(cfg, store_url, args) -> int:
    return _print_records(cfg, store_url, args, tail=args.n)


def _cmd_query(cfg, store_url, args) -> int:
    indexed = plan(cfg, store_url, args)
    if indexed is not None:
        lines = (file_lines(cfg, indexed.query) if indexed.source == "file"
                 else redis_lines(cfg, store_url, indexed.query))
        if lines is not None:
            n = 0
            for line in lines:
                sys.stdout.buffer.write(line + b"\n")
                n += 1
            sys.stdout.buffer.flush()
            print(f"{n} records through the {indexed.source} sink's index", file=sys.stderr)
            return 0
    return _print_records(cfg, store_url, args, tail=None)


def _print_records(cfg, store_url, args, tail: int | None) -> int:
    out = sys.stdout.buffer
    client, stream = _redis(cfg, store_url)
    if client is not None and args.source != "file":
        start = "-"
        if args.since is not None:  # entry ids are shipping times, never earlier than the record time
            start = f"{int(args.since * 1000)}-0"
        if tail is not None:
            page = list(reversed(client.xrevrange(stream, "+", "-", count=tail)))
            lines = [(f"{stream}@{e.decode()}", f[b"r"]) for e, f in page]
        else:
            lines = iter_stream(client, stream, start)
        last = "$"
        for where, line in lines:
            last = where.rsplit("@", 1)[1]
            if _matches(_parse(line), args):
                out.write(line + b"\n")
        out.flush()
        while args.follow:
            got = client.xread({stream: last}, block=1000, count=PAGE)
            for _, entries in got or ():
                for eid, fields in entries:
                    last = eid.decode()
                    if _matches(_parse(fields[b"r"]), args):
                        out.write(fields[b"r"] + b"\n")
            out.flush()
        return 0
    fs = sink_of(cfg, "file")
    if fs is None:
        print("no file or redis audit sink configured", file=sys.stderr)
        return 2
    kept = []
    for _, line in iter_file(fs.path):
        if _matches(_parse(line), args):
            kept.append(line)
            if tail is not None and len(kept) > tail:
                kept.pop(0)
    for line in kept:
        out.write(line + b"\n")
    out.flush()
    if args.follow:
        with open(fs.path, "rb") as fh:
            fh.seek(0, 2)
            while True:
                line = fh.readline()
                if not line:
                    time.sleep(0.5)
                    continue
                if _matches(_parse(line), args):
                    out.write(line)
                    out.flush()
    return 0


def trim_stream(client, stream: str, cut_id: str, key: bytes | None) -> int:
    """Remove entries before `cut_id` after writing a checkpoint record covering them."""
    covers = checkpoint_covers(line for _, line in iter_stream(client, stream, "-", "(" + cut_id))
    if not covers:
        return 0
    line = Chain(new_writer_id("checkpoint"), key).seal(checkpoint_record(covers))
    client.xadd(stream, {"r": line.rstrip(b"\n")})
    return client.xtrim(stream, minid=cut_id, approximate=False)


def _cmd_trim(cfg, store_url, args) -> int:
    missing = key_missing(cfg)
    if missing:  # a checkpoint sealed without the key would read as altered
        print(missing, file=sys.stderr)
        return KEY_MISSING
    client, stream = _redis(cfg, store_url)
    if client is None:
        print("trim works on the redis sink; the file sink trims itself on rotation", file=sys.stderr)
        return 2
    if args.keep is not None:
        newest = client.xrevrange(stream, "+", "-", count=args.keep)
        if len(newest) < args.keep:
            print("nothing to trim")
            return 0
        cut = newest[-1][0].decode()
    else:
        cut = f"{int(args.before * 1000)}-0"
    removed = trim_stream(client, stream, cut, env_key(cfg.hmac_key_env))
    print(f"trimmed {removed} entries before {cut}")
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="gateway audit")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("verify", "tail", "query", "trim"):
        p = sub.add_parser(name)
        p.add_argument("--config", required=True)
        if name in ("tail", "query", "verify"):
            p.add_argument("--source", choices=("redis", "file"), default=None)
        if name in ("tail", "query"):
            p.add_argument("--request-id")
            p.add_argument("--status", type=_status, help="a class (2xx, 4xx, 5xx), a code such as 429, or 0")
            p.add_argument("--action", choices=ACTIONS, help="the guardrail action")
            p.add_argument("--reason", help="block reason code, or its family (auth, rate_limit, guardrail, ...)")
            p.add_argument("--alias", help="the model alias the caller asked for")
            p.add_argument("--key")
            p.add_argument("--team")
            p.add_argument("--model")
            p.add_argument("--since", type=parse_time)
            p.add_argument("--follow", "-f", action="store_true")
        if name == "tail":
            p.add_argument("-n", type=int, default=20)
        if name == "query":
            p.add_argument("--no-index", action="store_true", help="scan the records, not the request log's index")
        if name == "trim":
            g = p.add_mutually_exclusive_group(required=True)
            g.add_argument("--keep", type=int)
            g.add_argument("--before", type=parse_time)
    args = ap.parse_args(argv)
    try:
        cfg, store_url = _load(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    cmd = {"verify": _cmd_verify, "tail": _cmd_tail, "query": _cmd_query, "trim": _cmd_trim}[args.cmd]
    try:
        return cmd(cfg, store_url, args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

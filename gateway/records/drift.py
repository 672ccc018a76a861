"""Input drift per alias: binned distributions of what callers send, and the PSI of the current window
against a reference window.

Features, one bin each per request (an alias configured in `[models]` only):

    prompt_tokens   0-16, 17-64, 65-256, 257-1k, 1k-4k, 4k-16k, >16k (the record's input tokens)
    messages        1, 2, 3-4, 5-8, 9-16, >16 (chat/messages `messages`, responses `input` items)
    language        the writing system of the last user text's first 64 letters: latin, cyrillic, greek,
                    arabic, hebrew, devanagari, thai, hangul, kana, han, other, none (no letters). A
                    script heuristic (a character-class count), not a language detector: English and
                    French are both "latin"; it costs microseconds where detectors cost milliseconds
    tools           yes / no (the body declares tools)
    injection       the highest injection score: none (no injection rule ran), <0.1, <0.3, <0.5, <0.7, <0.9, >=0.9
    guardrail       the record's strongest action: allow, flag, edit (redact/mask/hash/pseudonymize), refuse

The request path appends (alias, record, body) to a list (`observe`, one append); a background task folds
it into per-bucket counts every second (reads fold first), so features are computed off the request
path. Buckets are `bucket_s` wide and kept for the reference period plus the window; memory only (each
process judges its own traffic).

PSI = sum over bins of (c - r) * ln(c / r), with c and r the current and reference shares, each floored at
1e-4 so an empty bin counts as rare rather than infinite. Above 0.2 is the usual alarm, 0.1-0.2 a shift
worth a look. A window with fewer than `min_requests` requests (either side) has no PSI (null).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

from gateway.config.schema import DriftConfig

FEATURES: dict[str, tuple[str, ...]] = {
    "prompt_tokens": ("0-16", "17-64", "65-256", "257-1k", "1k-4k", "4k-16k", ">16k"),
    "messages": ("1", "2", "3-4", "5-8", "9-16", ">16"),
    "language": ("latin", "cyrillic", "greek", "arabic", "hebrew", "devanagari", "thai", "hangul", "kana", "han",
                 "other", "none"),
    "tools": ("no", "yes"),
    "injection": ("none", "<0.1", "<0.3", "<0.5", "<0.7", "<0.9", ">=0.9"),
    "guardrail": ("allow", "flag", "edit", "refuse"),
}
_OFFSETS: dict[str, int] = {}
_n = 0
for _f, _bins in FEATURES.items():
    _OFFSETS[_f] = _n
    _n += len(_bins)
N_BINS = _n
EPS = 1e-4
MAX_PENDING = 50_000  # records waiting for the fold; past it they are dropped (counted), never blocking


def _bin_tokens(n: int) -> int:
    for i, top in enumerate((16, 64, 256, 1024, 4096, 16384)):
        if n <= top:
            return i
    return 6


def _bin_messages(n: int) -> int:
    for i, top in enumerate((1, 2, 4, 8, 16)):
        if n <= top:
            return i
    return 5


_SCRIPTS = ((0x0041, 0x024F, 0), (0x0370, 0x03FF, 2), (0x0400, 0x052F, 1), (0x0590, 0x05FF, 4), (0x0600, 0x06FF, 3),
            (0x0750, 0x077F, 3), (0x0900, 0x097F, 5), (0x0E00, 0x0E7F, 6), (0x1100, 0x11FF, 7), (0x3040, 0x30FF, 8),
            (0x3400, 0x9FFF, 9), (0xAC00, 0xD7AF, 7))


def script_of(text: str) -> int:
    """The index in FEATURES["language"] of the most frequent script among the first 64 letters."""
    counts = [0] * 11
    seen = 0
    for ch in text:
        if not ch.isalpha():
            continue
        cp = ord(ch)
        for lo, hi, idx in _SCRIPTS:
            if lo <= cp <= hi:
                counts[idx] += 1
                break
        else:
            counts[10] += 1
        seen += 1
        if seen >= 64:
            break
    if not seen:
        return 11
    best = max(range(11), key=counts.__getitem__)
    # Japanese mixes kana and han: any kana makes it "kana".
    return 8 if counts[8] and best == 9 else best


def _last_user_text(items: Any) -> str:
    if isinstance(items, str):
        return items
    if not isinstance(items, list):
        return ""
    for m in reversed(items):
        if isinstance(m, dict) and m.get("role", "user") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return " ".join(p.get("text") or "" for p in c if isinstance(p, dict) and isinstance(p.get("text"), str))
            return ""
    return ""


def bins_of(rec: dict, body: dict | None) -> list[int]:
    """The bin (an index into the flat count vector) of each feature for one request."""
    body = body or {}
    items = body.get("messages")
    if items is None:
        items = body.get("input")
    n_msgs = len(items) if isinstance(items, list) else 1
    score = rec.get("injection_score")
    if score is None:
        inj = 0
    else:
        inj = next((i + 1 for i, top in enumerate((0.1, 0.3, 0.5, 0.7, 0.9)) if score < top), 6)
    action = rec.get("guardrail_action") or "allow"
    act = 0 if action == "allow" else 1 if action == "flag" else 3 if action in ("refuse", "block") else 2
    return [
        _OFFSETS["prompt_tokens"] + _bin_tokens(int(rec.get("input_tokens") or 0)),
        _OFFSETS["messages"] + _bin_messages(max(n_msgs, 1)),
        _OFFSETS["language"] + script_of(_last_user_text(items)),
        _OFFSETS["tools"] + (1 if body.get("tools") else 0),
        _OFFSETS["injection"] + inj,
        _OFFSETS["guardrail"] + act,
    ]


def psi(current: list[int], reference: list[int]) -> float:
    """PSI of two count vectors over the same bins."""
    c_total, r_total = sum(current), sum(reference)
    out = 0.0
    for c, r in zip(current, reference):
        cp, rp = max(c / c_total, EPS), max(r / r_total, EPS)
        out += (cp - rp) * math.log(cp / rp)
    return out


class Drift:
    """Bucketed bin counts per alias, and their PSI on read."""

    def __init__(self, config: Callable[[], DriftConfig], clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.pending: list[tuple[str, dict, dict | None]] = []
        self.dropped = 0
        self.buckets: dict[str, dict[int, list[int]]] = {}  # alias -> bucket number -> counts (+ total at the end)

    def observe(self, alias: str, rec: dict, body: dict | None) -> None:
        """On the request path: one append."""
        if len(self.pending) < MAX_PENDING:
            self.pending.append((alias, rec, body))
        else:
            self.dropped += 1

    def fold(self) -> None:
        pending, self.pending = self.pending, []
        if not pending:
            return
        width = self.config().bucket_s
        for alias, rec, body in pending:
            b = int(float(rec.get("time") or self.clock()) // width)
            per = self.buckets.setdefault(alias, {})
            counts = per.get(b)
            if counts is None:
                counts = per[b] = [0] * (N_BINS + 1)
            for i in bins_of(rec, body):
                counts[i] += 1
            counts[N_BINS] += 1
        self._trim()

    def _trim(self) -> None:
        cfg = self.config()
        now_b = int(self.clock() // cfg.bucket_s)
        keep = (cfg.window_s + cfg.reference_s) / cfg.bucket_s + 2
        oldest_pinned = int(cfg.reference_since // cfg.bucket_s) if cfg.reference_since is not None else None
        for per in self.buckets.values():
            for b in [b for b in per if now_b - b > keep and (oldest_pinned is None or b < oldest_pinned)]:
                del per[b]

    async def run(self) -> None:
        """The background fold, once a second."""
        while True:
            await asyncio.sleep(1.0)
            self.fold()

    def _sum(self, per: dict[int, list[int]], lo: int, hi: int) -> list[int]:
        out = [0] * (N_BINS + 1)
        for b, counts in per.items():
            if lo <= b < hi:
                for i, n in enumerate(counts):
                    out[i] += n
        return out

    def snapshot(self) -> dict:
        """/stats "drift": per alias, the windows' request counts and the PSI per feature (null when either
        window has fewer than `min_requests`), plus the largest."""
        self.fold()
        cfg = self.config()
        w = cfg.bucket_s
        now_b = int(self.clock() // w) + 1  # the current bucket counts as current
        cur_lo = now_b - max(int(round(cfg.window_s / w)), 1)
        if cfg.reference_since is not None and cfg.reference_until is not None:
            ref_lo, ref_hi = int(cfg.reference_since // w), int(cfg.reference_until // w)
        else:
            ref_lo, ref_hi = cur_lo - max(int(round(cfg.reference_s / w)), 1), cur_lo
        out: dict[str, Any] = {}
        for alias, per in self.buckets.items():
            cur, ref = self._sum(per, cur_lo, now_b), self._sum(per, ref_lo, ref_hi)
            ok = cur[N_BINS] >= cfg.min_requests and ref[N_BINS] >= cfg.min_requests
            values: dict[str, float | None] = {}
            for name, bins in FEATURES.items():
                o = _OFFSETS[name]
                values[name] = round(psi(cur[o:o + len(bins)], ref[o:o + len(bins)]), 4) if ok else None
            numbers = [v for v in values.values() if v is not None]
            out[alias] = {"current": cur[N_BINS], "reference": ref[N_BINS], "psi": values,
                          "max_psi": max(numbers) if numbers else None,
                          "bins": {name: dict(zip(bins, cur[_OFFSETS[name]:_OFFSETS[name] + len(bins)]))
                                   for name, bins in FEATURES.items()}}
        return {"window_s": cfg.window_s, "reference": _reference_text(cfg), "dropped": self.dropped, "by_alias": out}

    def collect(self) -> Iterator[Any]:
        """Prometheus: gateway_input_drift_psi{alias,feature}, read at scrape time."""
        from prometheus_client.core import GaugeMetricFamily

        g = GaugeMetricFamily("gateway_input_drift_psi", "PSI of the current window's inputs against the "
                              "reference window, per alias and feature", labels=["alias", "feature"])
        for alias, row in self.snapshot()["by_alias"].items():
            for feature, v in row["psi"].items():
                if v is not None:
                    g.add_metric([alias, feature], v)
        yield g


def _reference_text(cfg: DriftConfig) -> dict:
    if cfg.reference_since is not None and cfg.reference_until is not None:
        return {"pinned": True, "since": cfg.reference_since, "until": cfg.reference_until}
    return {"pinned": False, "seconds": cfg.reference_s}

"""Feedback on a request: the body's checks, the feedback record, and its aggregates per alias and target.

    POST /v1/feedback {"request_id": "...", "score": "up" | "down" | 1..5, "labels": [...], "comment": "...",
                       "entry": "<request log entry>" (optional)}

A score is kept as sent and normalised to 0..1 (`up` 1, `down` 0, n of 5 -> (n - 1) / 4); positive means
`up` or 4-5, negative `down` or 1-2. The HTTP side (`gateway.http.feedback`) finds the judged record and
scans the comment; everything here is pure. Aggregates are this process's since it started, like the
Prometheus counters beside them (the feedback records in the audit log are the fleet's full account).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.errors import BadRequest
from gateway.records.schema import SCHEMA_VERSION

MAX_REQUEST_ID = 256
MAX_LABELS = 16
MAX_LABEL = 64
MAX_COMMENT = 2000
MAX_ENTRY = 64
FIELDS = ("request_id", "score", "labels", "comment", "entry")
SCORES = ("up", "down", 1, 2, 3, 4, 5)


@dataclass(frozen=True, slots=True)
class Feedback:
    request_id: str
    score: str | int
    labels: tuple[str, ...] = ()
    comment: str | None = None
    entry: str | None = None

    @property
    def normalised(self) -> float:
        return normalise(self.score)


def normalise(score: str | int) -> float:
    if score == "up":
        return 1.0
    if score == "down":
        return 0.0
    return (int(score) - 1) / 4.0


def _text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise BadRequest(f"'{name}' must be a string of 1 to {limit} characters", param=name)
    return value


def parse_feedback(body: object) -> Feedback:
    """A `Feedback` from the request's JSON body; `BadRequest` names the first field it cannot use."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    for name in body:
        if name not in FIELDS:
            raise BadRequest(f"unknown field '{str(name)[:64]}'; known: {', '.join(FIELDS)}", param=str(name)[:64])
    if "request_id" not in body:
        raise BadRequest("'request_id' is required", param="request_id")
    rid = _text(body["request_id"], "request_id", MAX_REQUEST_ID)
    score = body.get("score")
    if isinstance(score, bool) or score not in SCORES or (isinstance(score, float)):
        raise BadRequest("'score' must be \"up\", \"down\" or a whole number from 1 to 5", param="score")
    labels = body.get("labels", [])
    if not isinstance(labels, list) or len(labels) > MAX_LABELS:
        raise BadRequest(f"'labels' must be an array of at most {MAX_LABELS} strings", param="labels")
    for i, label in enumerate(labels):
        _text(label, f"labels[{i}]", MAX_LABEL)
    comment = body.get("comment")
    if comment is not None:
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise BadRequest(f"'comment' must be a string of at most {MAX_COMMENT} characters", param="comment")
    entry = body.get("entry")
    if entry is not None:
        entry = _text(entry, "entry", MAX_ENTRY)
    return Feedback(rid, score, tuple(dict.fromkeys(labels)), comment or None, entry)


def feedback_record(fb: Feedback, judged: dict, entry: str, *, actor: str, key_id: str | None, comment: str | None,
                    entities: dict[str, int], request_id: str, now: float | None = None) -> dict:
    """The audit record of one feedback, linked to the judged request record by its chain position and hash."""
    return {
        "v": SCHEMA_VERSION, "type": "feedback", "time": time.time() if now is None else now,
        "request_id": request_id, "judged_request_id": fb.request_id, "judged_entry": entry,
        "judged_writer": judged.get("writer"), "judged_seq": judged.get("seq"), "judged_hash": judged.get("hash"),
        "actor": actor, "key_id": key_id, "judged_key_id": judged.get("key_id"),
        "alias": judged.get("alias"), "provider": judged.get("provider"), "model": judged.get("model"),
        "score": fb.score, "score_normalised": fb.normalised, "labels": list(fb.labels),
        "comment": comment, "comment_entities": entities,
    }


class _Agg:
    __slots__ = ("count", "positive", "negative", "total", "labels")

    def __init__(self) -> None:
        self.count = 0
        self.positive = 0
        self.negative = 0
        self.total = 0.0
        self.labels: dict[str, int] = {}

    def add(self, score: str | int, norm: float, labels: list[str]) -> None:
        self.count += 1
        self.total += norm
        if score == "up" or (isinstance(score, int) and score >= 4):
            self.positive += 1
        elif score == "down" or (isinstance(score, int) and score <= 2):
            self.negative += 1
        for label in labels:
            if label in self.labels or len(self.labels) < 64:  # bounded: labels are free text
                self.labels[label] = self.labels.get(label, 0) + 1

    def view(self) -> dict:
        return {"count": self.count, "positive": self.positive, "negative": self.negative,
                "mean_score": round(self.total / self.count, 4) if self.count else None,
                "labels": dict(sorted(self.labels.items(), key=lambda kv: -kv[1])[:10])}


class FeedbackStats:
    """Per alias and per target (provider/model): count, positive, negative and the mean normalised score."""

    MAX_ROWS = 1024  # aliases and targets come from config; the bound guards against anything else

    def __init__(self) -> None:
        self.by_alias: dict[str, _Agg] = {}
        self.by_target: dict[str, _Agg] = {}

    def observe(self, rec: dict) -> None:
        target = f"{rec.get('provider') or '-'}/{rec.get('model') or '-'}"
        for table, name in ((self.by_alias, rec.get("alias") or "-"), (self.by_target, target)):
            agg = table.get(name)
            if agg is None:
                if len(table) >= self.MAX_ROWS:
                    continue
                agg = table[name] = _Agg()
            agg.add(rec["score"], rec["score_normalised"], rec["labels"])

    def snapshot(self) -> dict:
        return {"by_alias": {k: v.view() for k, v in self.by_alias.items()},
                "by_target": {k: v.view() for k, v in self.by_target.items()}}

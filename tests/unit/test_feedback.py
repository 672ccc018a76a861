"""The feedback body's checks, the record's link fields and the aggregates, with literal inputs."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest
from gateway.records.feedback import FeedbackStats, feedback_record, normalise, parse_feedback
from gateway.records.schema import FEEDBACK_FIELDS


def test_scores_normalise_to_0_1():
    assert [normalise(s) for s in ("down", 1, 2, 3, 4, 5, "up")] == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_parse_keeps_labels_once_and_drops_an_empty_comment():
    fb = parse_feedback({"request_id": "r", "score": 3, "labels": ["a", "b", "a"], "comment": ""})
    assert (fb.request_id, fb.score, fb.labels, fb.comment, fb.entry) == ("r", 3, ("a", "b"), None, None)


@pytest.mark.parametrize("body", [[], "x", {"request_id": "r", "score": 1.0}, {"request_id": "r", "score": "UP"},
                                  {"request_id": "r", "score": 1, "labels": [None]},
                                  {"request_id": "r", "score": 1, "entry": ""}])
def test_bad_bodies(body):
    with pytest.raises(BadRequest):
        parse_feedback(body)


def test_record_links_to_the_judged_record_and_has_the_documented_fields():
    fb = parse_feedback({"request_id": "r", "score": "down", "labels": ["wrong"]})
    judged = {"writer": "h:1:x", "seq": 7, "hash": "ab" * 32, "key_id": "k", "alias": "a", "provider": "p", "model": "m"}
    rec = feedback_record(fb, judged, "12", actor="key", key_id="k", comment=None, entities={}, request_id="fb1", now=5.0)
    assert (rec["judged_writer"], rec["judged_seq"], rec["judged_hash"], rec["judged_entry"]) == ("h:1:x", 7, "ab" * 32, "12")
    chain = {"writer", "seq", "prev_hash", "hash"}
    assert list(rec) == [f for f, _, _ in FEEDBACK_FIELDS if f not in chain]


def test_aggregates_per_alias_and_target():
    st = FeedbackStats()
    for score in ("up", "down", 4, 3):
        st.observe({"alias": "a", "provider": "p", "model": "m", "score": score, "score_normalised": normalise(score),
                    "labels": ["x"]})
    snap = st.snapshot()
    assert snap["by_alias"]["a"] == {"count": 4, "positive": 2, "negative": 1, "mean_score": round(2.25 / 4, 4),
                                     "labels": {"x": 4}}
    assert snap["by_target"]["p/m"]["count"] == 4

"""The shadow comparison's pure pieces with literal inputs: similarity, the answer sink's bound, the
per-alias summary, and the answer filter."""

from __future__ import annotations

import pytest

from gateway.events import Finish, TextDelta
from gateway.filters.answer import AnswerText
from gateway.shadow.pair import MAX_ANSWER_CHARS, AnswerSink, ShadowStats, Side, jaccard, trigram_cosine


def test_jaccard_of_word_sets():
    assert jaccard("The cat sat", "the CAT sat") == 1.0
    assert jaccard("a b c d", "a b x y") == pytest.approx(2 / 6)
    assert jaccard("", "") == 1.0 and jaccard("a", "") == 0.0


def test_trigram_cosine():
    assert trigram_cosine("hello world", "hello world") == pytest.approx(1.0)
    assert trigram_cosine("abcdef", "uvwxyz") == 0.0
    assert 0.3 < trigram_cosine("the weather is nice today", "today the weather is nice") < 1.0
    assert trigram_cosine("", "") == 1.0 and trigram_cosine("ab", "ab") == 1.0 and trigram_cosine("ab", "") == 0.0


def test_sink_keeps_a_bounded_prefix_and_counts_everything():
    sink = AnswerSink()
    for _ in range(3):
        sink.add("x" * MAX_ANSWER_CHARS)
    assert len(sink.text()) == MAX_ANSWER_CHARS and sink.chars == 3 * MAX_ANSWER_CHARS


def test_answer_filter_reads_the_first_choice_and_its_finish():
    sink = AnswerSink()
    f = AnswerText(sink)
    for ev in (TextDelta(0, "Hel"), TextDelta(1, "other"), TextDelta(0, "lo")):
        f.on_text(ev)
    assert f.on_part_end(Finish(1, "length")) == [] and sink.finish is None
    f.on_part_end(Finish(0, "stop"))
    assert (sink.text(), sink.finish) == ("Hello", "stop")


def test_summary_means_only_compared_pairs():
    st = ShadowStats()
    p, s = Side(status=200, latency_ms=100.0, output_tokens=10, cost_usd=0.01, finish_reason="stop"), \
        Side(status=200, latency_ms=300.0, output_tokens=30, cost_usd=0.02, finish_reason="length")
    st.add({"alias": "a", "candidate": "c", "outcome": "compared", "primary": p.view(), "shadow": s.view(),
            "jaccard": 0.5, "cosine": 0.7})
    st.add({"alias": "a", "candidate": "c", "outcome": "timeout", "primary": p.view(), "shadow": Side().view(),
            "jaccard": None, "cosine": None})
    row = st.snapshot()["by_alias"]["a"]
    assert (row["pairs"], row["compared"], row["shadow_failed"], row["shadow_timeouts"]) == (2, 1, 1, 1)
    assert row["primary"]["latency_ms"] == 100.0 and row["shadow"]["latency_ms"] == 300.0
    assert row["jaccard"] == 0.5 and row["finish_reason_agreement"] == 0.0 and row["shadow_cost_usd_total"] == 0.02

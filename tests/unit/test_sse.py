"""The SSE parser: same events however the bytes are split, every line-ending style, comments."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.translate.sse import SSEEvent, SSEParser, encode_event

TRANSCRIPTS = Path(__file__).parent.parent / "fixtures" / "transcripts"
SSE_FILES = sorted(TRANSCRIPTS.glob("*.sse"))


def parse_all(pieces) -> list[SSEEvent]:
    parser = SSEParser()
    events = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    return events


def test_basic_events_and_fields():
    raw = b"event: ping\ndata: {\"type\": \"ping\"}\n\ndata: hello\n\n"
    assert parse_all([raw]) == [SSEEvent("ping", b'{"type": "ping"}'), SSEEvent(None, b"hello")]


def test_multiline_data_is_joined_with_lf():
    assert parse_all([b"data: a\ndata:b\ndata:  c\n\n"]) == [SSEEvent(None, b"a\nb\n c")]


def test_comments_ids_and_unknown_fields_are_ignored():
    raw = b": keep-alive\n\n:another\nid: 7\nretry: 100\nfoo: bar\nevent: x\ndata: 1\n\n"
    assert parse_all([raw]) == [SSEEvent("x", b"1")]


def test_blank_line_without_data_dispatches_nothing_and_resets_event():
    assert parse_all([b"event: a\n\ndata: 1\n\n"]) == [SSEEvent(None, b"1")]


def test_empty_data_line_is_an_event():
    assert parse_all([b"data:\n\n"]) == [SSEEvent(None, b"")]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol):
    raw = b"event: e" + eol + b"data: x" + eol + b"data: y" + eol + eol
    assert parse_all([raw]) == [SSEEvent("e", b"x\ny")]


def test_crlf_split_between_feeds_is_one_line_end():
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\n") == [SSEEvent(None, b"x")]


def test_byte_order_mark_is_dropped_even_when_split():
    assert parse_all([b"\xef", b"\xbb", b"\xbfdata: 1\n\n"]) == [SSEEvent(None, b"1")]


def test_incomplete_event_stays_buffered_until_blank_line():
    parser = SSEParser()
    assert parser.feed(b"data: {\"a\":") == []
    assert parser.feed(b" 1}\n") == []
    assert parser.feed(b"\n") == [SSEEvent(None, b'{"a": 1}')]


def test_close_keeps_an_unterminated_last_event():
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]") == []
    assert parser.close() == [SSEEvent(None, b"[DONE]")]
    assert parser.close() == []


@pytest.mark.parametrize("path", SSE_FILES, ids=lambda p: p.name)
def test_every_split_point_of_every_transcript_gives_the_same_events(path):
    raw = path.read_bytes()
    whole = parse_all([raw])
    assert whole and all(e.data for e in whole)
    for i in range(len(raw) + 1):
        assert parse_all([raw[:i], raw[i:]]) == whole, i


@pytest.mark.parametrize("path", SSE_FILES, ids=lambda p: p.name)
def test_transcripts_with_crlf_and_byte_at_a_time(path):
    raw = path.read_bytes()
    whole = parse_all([raw])
    crlf = raw.replace(b"\n", b"\r\n")
    assert parse_all([crlf[i : i + 1] for i in range(len(crlf))]) == whole


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_splits_of_transcripts(data):
    path = data.draw(st.sampled_from(SSE_FILES))
    raw = path.read_bytes()
    if data.draw(st.booleans()):
        raw = raw.replace(b"\n", b"\r\n")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=20)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
    assert parse_all(pieces) == parse_all([raw])


@given(
    data=st.binary(max_size=200).map(lambda b: b.replace(b"\r\n", b"\n").replace(b"\r", b"\n")),
    event=st.none() | st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
                              min_size=1, max_size=20).filter(lambda s: s.strip() == s),
)
def test_encode_then_parse_round_trips(data, event):
    assert parse_all([encode_event(data, event)]) == [SSEEvent(event, data)]


def test_encode_shapes():
    assert encode_event(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_event(b"x", "message_stop") == b"event: message_stop\ndata: x\n\n"
    assert encode_event(b"a\nb") == b"data: a\ndata: b\n\n"
    with pytest.raises(ValueError):
        encode_event(b"x", "bad\nname")


_PIECES = st.sampled_from([b"data: ", b"data:", b"data:  ", b"event: e", b"event:", b": c", b"id: 1", b"x", b"{}",
                           b"\n", b"\n\n", b"data: [DONE]"])


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(_PIECES, max_size=30), cut=st.integers(0, 400))
def test_reads_split_on_lf_parse_as_the_buffered_path_does(pieces, cut):
    # A read arriving with nothing pending and no CR is split on LF; the same stream with CRLF line
    # ends goes through the buffer and must give the same events.
    raw = b"".join(pieces)
    buffered = parse_all([raw.replace(b"\n", b"\r\n")])
    assert parse_all([raw]) == buffered
    assert parse_all([raw[:cut], raw[cut:]]) == buffered

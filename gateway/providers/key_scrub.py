"""Taking a provider's own credential out of everything its upstream sends back.

An upstream may quote the gateway's key: OpenAI's 401 does, a proxy in front of a model may put it into
an error message, a model can be made to repeat it. Whatever of the upstream's a caller, a record or a
log line can see passes through a `KeyScrubber` first: error messages and codes, whole answers, streams.

What is matched is the decoded text, in every form a reader can turn back into the key: the key
itself, and any mix, character by character, of JSON escapes (`\\u0073` in either hex case, surrogate
pairs, `\\/` and the other short escapes) and percent-encoding (`%73`), also when the decoded text holds
such escapes again (an error message quoting another JSON body or a URL). In a stream the key is also
matched across events: pieces that follow one another in one text stream (a choice's content, a content
block's text, a tool call's arguments, a Responses delta) are joined and matched as a reader decodes
them, so a key the model writes out with escapes is found however the events cut it (a text ending in an
escape cut off, `\\u00` or `%2`, is held until the next piece completes it). An event whose text ends with
the key's first `HOLD_FROM` (3) characters is held back until the next piece shows whether the key
follows; text ending with fewer (words ending in "s") goes out at once, without a look, so a text that
starts with the rest of a key whose first 1 or 2 characters went out before it is cut there: a caller
may see at most those 2 characters before `[redacted]`, never enough to rebuild the key. A key whose
pieces are interleaved with another text stream's text, or spread over more events than `held_limit`
(64, or 4 an escape-free key character for a longer key), is matched only within each piece. Partially masked echoes (`sk-...abcd`) are not the key and
are left alone, as are other transformations (base64, hashing).

Keys shorter than `MIN_KEY_CHARS` are not scrubbed: `none`, `dummy` or `x` (placeholders for vLLM or
Ollama) are no secret, and replacing them would rewrite ordinary text. `check-config` says so.

Cost: bytes are decoded only when a byte-level test says a reader could find the key in them: the key
itself, a `\\u00XX` or `%XX` escape of one of its characters (or of `\\`, `u`, a hex digit, `%`, which
can build further escapes: `\\u00e9` from ensure_ascii text or `%C3%A9` never can), `\\/` for a key with
a slash, or in a stream the key's 2nd and 3rd characters or a string starting with its 3rd (the start
and continuation rules above). Everything else passes as the upstream's own bytes: in a stream that is
two single-byte scans and one regex with a literal lead, about 1 µs an event on a loaded 2-core box
(`benchmarks/key_scrub_micro.py`); a decoded event costs 10-20 µs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import orjson

from gateway.providers.key_escapes import PARTIAL_ESCAPE, cut_escape, decode_map, hex_class, json_raw, unescape

MIN_KEY_CHARS = 16
REDACTED = "[redacted]"
MAX_HELD_EVENTS = 64  # events held back while a possible key start waits for its next piece (at least)
EVENTS_PER_KEY_CHAR = 4  # a longer key (a Vertex token: ~250 characters) may be echoed a token an event


def held_limit(key: str) -> int:
    """How many events a stream holds back at most while a key start waits for the rest: room for the key
    echoed one character an event, with empty events between."""
    return max(MAX_HELD_EVENTS, EVENTS_PER_KEY_CHAR * len(key))
# A stream text ending with this many of the key's first characters is held back; the text before a key
# may have gone out ending with up to HOLD_FROM - 1 of them: only those can leak. (`_lead` is built for 3.)
HOLD_FROM = 3

# Strings whose pieces a client joins across stream events (OpenAI chat, Anthropic, Responses).
_JOINED = frozenset({"content", "text", "delta", "arguments", "partial_json", "thinking", "refusal",
                     "reasoning_content", "reasoning"})
# Fields that say which text stream an event's string belongs to.
_STREAM_IDS = ("index", "output_index", "content_index", "summary_index")


class KeyScrubber:
    """One provider's key, compiled once: finds it in bytes and text and takes it out."""

    __slots__ = ("key", "_key_b", "_key_raw", "_slash", "_esc_at", "_esc_re", "_pct_re", "_lead")

    def __init__(self, key: str) -> None:
        self.key = key
        self._key_b = key.encode()
        self._key_raw = json_raw(key)
        self._slash = "/" in key  # `\\/` can stand for one of its characters
        # An escape matters only if it decodes to a character that is in the key or that can start or
        # complete another escape once decoded (`\\`, `u`, hex digits, `%`): `\\u00e9` or `%C3%A9`
        # (any non-ASCII text written with ensure_ascii, or a URL) cannot spell an ASCII key.
        risky = set(key) | set("\\u%0123456789abcdefABCDEF")
        self._esc_at = b"\\u00" if max(map(ord, risky)) < 0x100 else b"\\u"
        forms = sorted({hex_class(ord(c), 4) for c in risky if ord(c) < 0x10000})
        if max(map(ord, risky)) >= 0x10000:
            forms.append("[dD][89abAB][0-9a-fA-F]{2}")  # the high half of a surrogate pair
        self._esc_re = re.compile(("\\\\u(?:" + "|".join(forms) + ")").encode())
        byte_forms = sorted({hex_class(b, 2) for c in risky for b in c.encode()})
        self._pct_re = re.compile(("%(?:" + "|".join(byte_forms) + ")").encode())
        # In a stream, an event holds `k-` or `"-` (the key's 2nd and 3rd characters, or a string
        # starting with its 3rd) if a text of it may end with the key's first 3 characters, start with
        # the rest of a key whose first 1 or 2 characters went out before it, or hold the key itself
        # (see StreamScrub). One regex led by the 3rd character: `re` finds a literal lead with a
        # fast scan, twice as fast as two `in` tests.
        third = json_raw(key[2])
        self._lead = re.compile(re.escape(third) + b"(?:(?<=" + re.escape(json_raw(key[1]) + third) + b")|(?<="
                                + re.escape(b'"' + third) + b"))").search

    @classmethod
    def for_key(cls, key: str | None) -> KeyScrubber | None:
        """The scrubber for a key, or None for none or one too short to be a secret."""
        return cls(key) if key is not None and len(key) >= MIN_KEY_CHARS else None

    # -- whole texts and bodies ------------------------------------------------------------------------
    def may_hold(self, data: bytes) -> bool:
        """Could a reader decode the key from `data`? False is certain; True means look closer."""
        return (self._key_raw in data or self._key_b in data or self._escaped(data))

    def _escaped(self, data: bytes) -> bool:
        """Does `data` hold an escape that decodes to a character of the key (or to one that builds
        another escape)? Single-byte searches first: they are the cheapest."""
        if b"%" in data and self._pct_re.search(data) is not None:
            return True
        return b"\\" in data and ((self._esc_at in data and self._esc_re.search(data) is not None)
                                   or (self._slash and b"\\/" in data))

    def _suspect(self, data: bytes) -> bool:
        """In a stream, does an event need decoding? (the key in any form, a text holding its start or
        its continuation, or a text ending in an escape cut off, which the next event may complete)"""
        return (self._lead(data) is not None or self._escaped(data)
                or cut_escape(data))

    def text(self, s: str) -> str:
        """A decoded string with the key taken out, in whatever escapes it was written. A string that
        held it comes back with its escapes decoded (the key's pieces may be spread over several)."""
        if self.key in s:
            s = s.replace(self.key, REDACTED)
        if "\\" not in s and "%" not in s:
            return s
        plain = unescape(s)
        return plain.replace(self.key, REDACTED) if self.key in plain else s

    def body(self, data: bytes) -> bytes:
        """A whole JSON body (or any text) with the key taken out of every string; the same bytes
        when there is nothing to take out."""
        if not self.may_hold(data):
            return data
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            text = data.decode("utf-8", "replace")
            clean_text = self.text(text)
            return data if clean_text == text else clean_text.encode()
        clean = self._walk(doc)
        return data if clean == doc else orjson.dumps(clean)

    def _walk(self, node):
        if isinstance(node, str):
            return self.text(node)
        if isinstance(node, dict):
            return {self.text(k): self._walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._walk(v) for v in node]
        return node

    def error(self, err):
        """A gateway error built from upstream text, with the key out of every field a caller sees."""
        err.message = self.text(err.message)
        for name in ("code", "param"):
            value = getattr(err, name, None)
            if isinstance(value, str):
                setattr(err, name, self.text(value))
        err.headers = {k: self.text(v) for k, v in err.headers.items()}
        return err

    def stream(self) -> StreamScrub:
        return StreamScrub(self)


class _Event:
    """A client-bound SSE event held back or rewritten: its bytes, and its JSON once decoded."""

    __slots__ = ("raw", "head", "doc", "dirty")

    def __init__(self, raw: bytes, head: bytes = b"", doc=None) -> None:
        self.raw = raw
        self.head = head  # the event's lines before its JSON data (`event: ...\ndata: `)
        self.doc = doc
        self.dirty = False

    def out(self) -> bytes:
        return self.head + orjson.dumps(self.doc) + b"\n\n" if self.dirty else self.raw


class StreamScrub:
    """Per-stream filter over the client-bound SSE bytes: `feed(bytes) -> bytes`, then `finish()`."""

    __slots__ = ("s", "_held", "_pending", "_edits", "_limit")

    def __init__(self, scrubber: KeyScrubber) -> None:
        self.s = scrubber
        self._limit = held_limit(scrubber.key)
        self._held: list[_Event] = []
        # text stream -> (the pieces (event, container, field, start, end) of its text that may be part
        # of the key, in order; their text; whether it follows text that went out unexamined)
        self._pending: dict[tuple, tuple[list[tuple], str, bool]] = {}
        self._edits: list[tuple] = []  # (event, container, field, start, end, replacement)

    def feed(self, data: bytes) -> bytes:
        s = self.s
        if not self._held and b"%" not in data and b"\\" not in data and s._lead(data) is None:
            return data  # the common case (`_suspect`, inlined: three fast byte scans)
        if not self._held and not s._suspect(data):
            return data  # the upstream's own bytes, untouched
        out: list[bytes] = []
        for raw in _split_events(data):
            if not self._held and not s._suspect(raw):
                out.append(raw)
                continue
            self._take(raw)
            if not self._pending or len(self._held) > self._limit:
                out.append(self._release())
        return b"".join(out)

    def finish(self) -> bytes:
        """The stream ends (or is cut): what is held goes out; a key start not followed by the rest
        was not the key."""
        return self._release()

    # -- internals --------------------------------------------------------------------------------------
    def _release(self) -> bytes:
        self._pending.clear()
        by_string: dict[tuple[int, object], list[tuple]] = {}
        for ev, box, field, start, end, repl in self._edits:
            ev.dirty = True
            by_string.setdefault((id(box), field), []).append((box, field, start, end, repl))
        for edits in by_string.values():
            box, field = edits[0][0], edits[0][1]
            s = box[field]
            for _, _, start, end, repl in sorted(edits, key=lambda e: e[2], reverse=True):
                s = s[:start] + repl + s[end:]
            box[field] = s
        self._edits.clear()
        out = b"".join(ev.out() for ev in self._held)
        self._held.clear()
        return out

    def _take(self, raw: bytes) -> None:
        head, payload = _data_of(raw)
        doc = None
        if payload is not None:
            try:
                doc = orjson.loads(payload)
            except orjson.JSONDecodeError:
                doc = None
        if not isinstance(doc, (dict, list)):
            # Not a JSON event ([DONE], a comment): no text stream to join; scrub it as text.
            text = raw.decode("utf-8", "replace")
            scrubbed = self.s.text(text)
            self._held.append(_Event(scrubbed.encode() if scrubbed != text else raw))
            return
        ev = _Event(raw, head, doc)
        self._held.append(ev)
        # Without an escape or the key in its bytes, no single string can hold the key: only the
        # text streams' strings need looking at (a key start at their end).
        every = self.s.may_hold(raw)
        for box, field, stream, joined in _strings(doc, (), every):
            self._string(ev, box, field, stream, joined)

    def _string(self, ev: _Event, box, field, stream: tuple, joined: bool) -> None:
        s = box[field]
        clean = self.s.text(s)
        if clean != s:
            box[field] = s = clean
            ev.dirty = True
        if not joined:
            return
        key = self.s.key
        for other in [k for k in self._pending if k != stream]:
            del self._pending[other]  # another text stream goes on: that one's key start ended there
        pieces, text, after_unseen = self._pending.pop(stream, ([], "", True))
        pieces = pieces + [(ev, box, field, 0, len(s))]
        x = text + s
        # The joined text is matched as a reader decodes it (escapes written out by the model, cut across
        # events): `raw` maps a decoded position back to `x`. An escape cut off at the end is not decoded
        # yet: the text is held back until the next piece completes it.
        partial = PARTIAL_ESCAPE.search(x) if ("\\" in x or "%" in x) else None
        core = x if partial is None or partial.start() == len(x) else x[:partial.start()]
        cut_off = core is not x
        if "\\" in core or "%" in core:
            plain, raw = decode_map(core)
        else:
            plain, raw = core, None
        def at_raw(i: int) -> int:
            return i if raw is None else raw[i]
        end = 0
        if after_unseen:
            # Text that went out unexamined ends with at most HOLD_FROM - 1 of the key's first
            # characters: a text going on with the rest of the key loses that rest.
            j = next((j for j in range(1, HOLD_FROM) if plain.startswith(key[j:])), 0)
            if j:
                end = len(key) - j
                self._cut(pieces, 0, at_raw(end))
        at = plain.find(key, end)
        while at != -1:  # a key spanning events (one inside `s` is already replaced)
            self._cut(pieces, at_raw(at), at_raw(at + len(key)))
            end = at + len(key)
            at = plain.find(key, end)
        # Held back: a text that may still become such a rest and would make the key's start that went
        # out longer than HOLD_FROM - 1, or the longest end (after any match) that is the key's start,
        # of at least HOLD_FROM characters (of any length before a cut-off escape).
        if after_unseen and end == 0 and any((cut_off or j + len(plain) >= HOLD_FROM) and key.startswith(plain, j)
                                             for j in range(1, HOLD_FROM)):
            self._pending[stream] = (pieces, x, True)
            return
        first = max(end, len(plain) - len(key) + 1)
        if cut_off:  # any key start (even none) before the cut-off escape
            i = next(i for i in range(first, len(plain) + 1) if key.startswith(plain[i:]))
        else:
            head = key[:HOLD_FROM]
            i = plain.find(head, first)
            while i != -1 and not key.startswith(plain[i:]):
                i = plain.find(head, i + 1)
        if i != -1:
            start = at_raw(i)
            # Held from the cut-off escape itself: the text before it went out unexamined.
            self._pending[stream] = (_slice(pieces, start, len(x)), x[start:], cut_off and i == len(plain))

    def _cut(self, pieces: list[tuple], a: int, b: int) -> None:
        """Remove text positions [a, b) of the joined pieces; the first removed part says why."""
        repl = REDACTED
        for ev, box, field, start, end, _ in _spans(pieces, a, b):
            self._edits.append((ev, box, field, start, end, repl))
            repl = ""


def _spans(pieces: list[tuple], a: int, b: int) -> Iterator[tuple]:
    """The parts of `pieces` (joined) that positions [a, b) fall on, with string offsets."""
    pos = 0
    for ev, box, field, start, end in pieces:
        n = end - start
        lo, hi = max(a, pos), min(b, pos + n)
        if lo < hi:
            yield ev, box, field, start + lo - pos, start + hi - pos, None
        pos += n


def _slice(pieces: list[tuple], a: int, b: int) -> list[tuple]:
    return [(ev, box, field, start, end) for ev, box, field, start, end, _ in _spans(pieces, a, b)]


def _strings(node, stream: tuple, every: bool) -> Iterator[tuple]:
    """(container, field, text stream id, joined?) for the strings of a decoded event: those of text
    streams, or with `every` all of them."""
    if isinstance(node, dict):
        here = stream
        for k in _STREAM_IDS:
            if k in node and not isinstance(node[k], (dict, list)):
                here += ((k, node[k]),)
        for k, v in node.items():
            if isinstance(v, str):
                if k in _JOINED:
                    yield node, k, here + (k,), True
                elif every:
                    yield node, k, (), False
            elif isinstance(v, (dict, list)):
                yield from _strings(v, here + (k,), every)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            if isinstance(v, str):
                if every:
                    yield node, i, (), False
            elif isinstance(v, (dict, list)):
                # An element that names its own stream (`index`) keeps that name wherever it sits.
                named = isinstance(v, dict) and any(k in v for k in _STREAM_IDS)
                yield from _strings(v, stream if named else stream + (i,), every)


def _split_events(data: bytes) -> list[bytes]:
    """Client-bound bytes cut into whole SSE events, each with its blank-line end."""
    parts = data.split(b"\n\n")
    events = [p + b"\n\n" for p in parts[:-1]]
    if parts[-1]:
        events.append(parts[-1])
    return events


def _data_of(raw: bytes) -> tuple[bytes, bytes | None]:
    """(the lines before the data, the one-line data) of an event; None when it has no single data line."""
    if raw.startswith(b"data: "):
        at = 0
    else:
        at = raw.find(b"\ndata: ")
        if at == -1:
            return b"", None
        at += 1
    start = at + 6
    end = raw.find(b"\n", start)
    if end == -1:
        end = len(raw)
    if raw[end:].strip():  # more lines after the data: not one of ours
        return b"", None
    return raw[:start], raw[start:end]

"""Server-sent events on the wire: an incremental parser and an encoder.

Upstream bytes arrive in arbitrary pieces, so `SSEParser` keeps the unfinished line between
`feed` calls and returns only complete events. It follows the WHATWG event-stream rules the
providers rely on: lines end in LF, CRLF or CR; a line starting with ":" is a comment; "data"
lines accumulate and are joined with LF; a blank line dispatches the event. `id` and `retry` are
read and dropped: no provider resumes a stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
_BOM_START = (b"", _BOM[:1])  # a first read starting so may be (or be part of) a byte-order mark


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: bytes


class SSEParser:
    __slots__ = ("_buf", "_scanned", "_event", "_data", "_started")

    def __init__(self) -> None:
        # A bytearray and a scan position, so a long line arriving in many reads is copied and
        # searched once, not once per read.
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already known to hold no line end
        self._event: str | None = None
        self._data: list[bytes] | None = None  # None: no data line yet in this event
        self._started = False  # a leading byte-order mark has been dealt with

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if (not self._buf and type(chunk) is bytes and b"\r" not in chunk
                and (self._started or chunk[:1] not in _BOM_START)):
            self._started = True
            return self._feed_lf(chunk)
        buf = self._buf
        buf += chunk
        if not self._started:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                return []  # could still be a split byte-order mark
            self._started = True
            if buf.startswith(_BOM):
                del buf[: len(_BOM)]
        events: list[SSEEvent] = []
        start = 0
        end = len(buf)
        held = -1
        for m in _LINE_END.finditer(buf, self._scanned):
            if m.end() == end and m.end() - m.start() == 1 and buf[m.start()] == 0x0D:
                held = m.start()  # a CR at the end may be the first half of a CRLF split across feeds
                break
            self._line(bytes(buf[start : m.start()]), events)
            start = m.end()
        if start:
            del buf[:start]
        self._scanned = held - start if held >= 0 else len(buf)
        return events

    def _feed_lf(self, chunk: bytes) -> list[SSEEvent]:
        """The usual read: nothing pending and no CR, so lines are what split(LF) gives, the last piece
        being the unfinished line. Data lines and blank lines, nearly all of a stream, are handled here
        without a copy into the buffer or a call per line."""
        lines = chunk.split(b"\n")
        rest = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data is not None:
                    data = self._data
                    events.append(SSEEvent(self._event, data[0] if len(data) == 1 else b"\n".join(data)))
                    self._data = None
                self._event = None
            elif line[:6] == b"data: ":
                if self._data is None:
                    self._data = [line[6:]]
                else:
                    self._data.append(line[6:])
            else:
                self._line(line, events)
        if rest:
            self._buf += rest
            self._scanned = len(rest)
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: finish a last line or event the upstream did not terminate.

        The standard drops an event without its blank line; a gateway relaying a provider that
        closes right after its last `data:` line would lose the end of the answer, so it is kept.
        """
        events: list[SSEEvent] = []
        if self._buf:
            line = bytes(self._buf[:-1] if self._buf.endswith(b"\r") else self._buf)
            self._buf.clear()
            self._scanned = 0
            if line:
                self._line(line, events)
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data is not None:
                events.append(SSEEvent(self._event, b"\n".join(self._data)))
            self._event = None
            self._data = None
            return
        if line[0] == 0x3A:  # ":" comment, used by some providers as a keep-alive
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            if self._data is None:
                self._data = [value]
            else:
                self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace") or None


def encode_event(data: bytes, event: str | None = None) -> bytes:
    """One event on the wire. Newlines inside `data` become several `data:` lines."""
    if event is not None and ("\n" in event or "\r" in event):
        raise ValueError("an SSE event name cannot contain a line break")
    if b"\n" in data or b"\r" in data:
        body = b"".join(b"data: " + part + b"\n" for part in _LINE_END.split(data))
    else:
        body = b"data: " + data + b"\n"
    if event is None:
        return body + b"\n"
    return b"event: " + event.encode() + b"\n" + body + b"\n"

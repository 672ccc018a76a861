"""AWS event-stream framing (`application/vnd.amazon.eventstream`), read incrementally.

Bedrock's ConverseStream answers in binary frames, not SSE: a 12-byte prelude (total length, headers
length, prelude CRC32), typed headers (`:message-type`, `:event-type`, `:exception-type`,
`:content-type`), a payload and a message CRC32. The parsing and both CRC checks are botocore's
(`botocore.eventstream.EventStreamBuffer`, which is fed bytes as they come and yields whole messages),
so no frame parser is written here; this module only names each message for the decoder, in the same
`SSEEvent(event, data)` shape the SSE parser gives the other wires:

- an event (`:message-type` = `event`): its `:event-type` (`contentBlockDelta`, ...) and JSON payload;
- a modelled exception (`exception`): its `:exception-type` (`throttlingException`, ...) and payload;
- an unmodelled error (`error`): the name `error` and `{"code": ..., "message": ...}` built from the
  `:error-code` and `:error-message` headers.

A frame that fails its CRC or length checks raises `Malformed` (the upstream's fault). Bytes left at the
end of the body are a cut frame: `close` drops them, and the decoder reports the cut stream.
"""

from __future__ import annotations

import struct

import orjson
from botocore.eventstream import EventStreamBuffer, ParserError

from gateway.codecs import Malformed
from gateway.translate.sse import SSEEvent


class EventStreamFramer:
    """Per-request: upstream bytes in, one `SSEEvent` per complete frame out."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = EventStreamBuffer()

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buf.add_data(chunk)
        out: list[SSEEvent] = []
        try:
            for msg in self._buf:
                out.append(_named(msg.headers, msg.payload))
        # A CRC mismatch, an impossible length, a duplicate header or one of an unknown type: botocore
        # reading the upstream's bytes, so the upstream's fault.
        except (ParserError, ValueError, KeyError, IndexError, struct.error) as exc:
            raise Malformed(f"an AWS event-stream frame is corrupt ({type(exc).__name__})") from exc
        return out

    def close(self) -> list[SSEEvent]:
        return []  # an incomplete last frame is dropped; the decoder's `end` reports the cut


def _named(headers: dict, payload: bytes) -> SSEEvent:
    kind = headers.get(":message-type", "event")
    if kind == "event":
        return SSEEvent(str(headers.get(":event-type") or ""), payload)
    if kind == "exception":
        return SSEEvent(str(headers.get(":exception-type") or "exception"), payload)
    return SSEEvent("error", orjson.dumps({"code": headers.get(":error-code"),
                                           "message": headers.get(":error-message")}))

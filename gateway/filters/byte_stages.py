"""Byte-level stages after the encoder, for work on exactly what the client gets: provider-key
scrubbing (the last word on every byte, also on the raw-bytes fast path) and payload capture.

`KeyScrubStage` wraps `gateway.providers.key_scrub.StreamScrub` without changing it: a key split across
two events is held back until it can be judged."""

from __future__ import annotations

from gateway.context import RequestContext
from gateway.providers.key_scrub import KeyScrubber


class ByteStages:
    __slots__ = ("scrub", "capture")

    def __init__(self, ctx: RequestContext, key_scrub: KeyScrubber | None) -> None:
        self.scrub = key_scrub.stream() if key_scrub is not None else None
        self.capture = ctx.capture()  # a list when this request's payload is sampled (audit or trace)

    def feed(self, data: bytes) -> bytes:
        if self.scrub is not None:
            data = self.scrub.feed(data)
        if self.capture is not None:
            self.capture.append(data)
        return data

    def finish(self, data: bytes = b"") -> bytes:
        """The last bytes, with whatever the scrub still holds."""
        if self.scrub is not None:
            data = self.scrub.feed(data) + self.scrub.finish() if data else self.scrub.finish()
        if self.capture is not None and data:
            self.capture.append(data)
        return data

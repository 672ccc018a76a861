"""Several credentials of one provider, scrubbed together: AWS's secret key and session token. Each is
a `KeyScrubber` (gateway/providers/key_scrub.py); this applies them one after the other to texts,
bodies, errors and streams (the stream scrubs chained: what one releases, the next reads)."""

from __future__ import annotations

from typing import Any

from gateway.providers.key_scrub import KeyScrubber, StreamScrub


def scrubber_for(*keys: str | None) -> KeyScrubber | None:
    """The scrubber of every key long enough to be a secret: None, one `KeyScrubber`, or a set."""
    found = [s for s in map(KeyScrubber.for_key, dict.fromkeys(keys)) if s is not None]
    if not found:
        return None
    return found[0] if len(found) == 1 else KeyScrubberSet(found)


class KeyScrubberSet(KeyScrubber):
    __slots__ = ("scrubbers",)

    def __init__(self, scrubbers: list[KeyScrubber]) -> None:
        super().__init__(scrubbers[0].key)
        self.scrubbers = scrubbers

    def may_hold(self, data: bytes) -> bool:
        return any(s.may_hold(data) for s in self.scrubbers)

    def text(self, s: str) -> str:
        for scrubber in self.scrubbers:
            s = scrubber.text(s)
        return s

    def body(self, data: bytes) -> bytes:
        for scrubber in self.scrubbers:
            data = scrubber.body(data)
        return data

    def error(self, err: Any) -> Any:
        for scrubber in self.scrubbers:
            err = scrubber.error(err)  # type: ignore[no-untyped-call]
        return err

    def stream(self) -> StreamScrub:
        return _StreamChain(self.scrubbers)


class _StreamChain(StreamScrub):
    __slots__ = ("chain",)

    def __init__(self, scrubbers: list[KeyScrubber]) -> None:
        super().__init__(scrubbers[0])
        self.chain = [s.stream() for s in scrubbers]

    def feed(self, data: bytes) -> bytes:
        for stream in self.chain:
            data = stream.feed(data) if data else data
        return data

    def finish(self) -> bytes:
        data = b""
        for stream in self.chain:
            data = (stream.feed(data) if data else b"") + stream.finish()
        return data

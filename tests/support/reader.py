"""What a reader (a person, a model, a parser) sees of a text, written apart from the gateway's own fold
(gateway/guardrails/pii/fold.py) so tests can check it: format characters gone, Unicode spaces as spaces,
compatibility forms (fullwidth) as their plain letters."""

from __future__ import annotations

import unicodedata


def read(text: str) -> str:
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cf":
            continue
        out.append(" " if category == "Zs" else unicodedata.normalize("NFKC", ch))
    return "".join(out)

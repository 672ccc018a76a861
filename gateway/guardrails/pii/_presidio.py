"""Load the handful of Presidio recognizers the fast tier uses without importing spaCy.

`import presidio_analyzer` runs the package `__init__`, which imports the AnalyzerEngine and the NLP
engines and with them spaCy (~100 MB RSS, ~0.8 s). The pattern recognizers themselves only need
`regex`, `tldextract` and `phonenumbers`. So, unless the real package is already imported, we load the
needed submodules under temporary package stubs, then drop the stubs: a later ordinary
`import presidio_analyzer` (the NER tier, a test) runs the real `__init__`, which reuses the
already-loaded submodules, so classes stay identical.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

_ROOT = "presidio_analyzer"
# Submodules the recognizers import from the package root, in dependency order.
_CORE = (
    ("analysis_explanation", ("AnalysisExplanation",)),
    ("recognizer_result", ("RecognizerResult",)),
    ("score_thresholds", ()),
    ("pattern", ("Pattern",)),
    ("entity_recognizer", ("EntityRecognizer",)),
    ("local_recognizer", ("LocalRecognizer",)),
    ("pattern_recognizer", ("PatternRecognizer",)),
)
_PACKAGES = (
    "predefined_recognizers",
    "predefined_recognizers.generic",
    "predefined_recognizers.country_specific",
    "predefined_recognizers.country_specific.us",
)
RECOGNIZERS = {
    "CreditCardRecognizer": "predefined_recognizers.generic.credit_card_recognizer",
    "EmailRecognizer": "predefined_recognizers.generic.email_recognizer",
    "IbanRecognizer": "predefined_recognizers.generic.iban_recognizer",
    "IpRecognizer": "predefined_recognizers.generic.ip_recognizer",
    "UrlRecognizer": "predefined_recognizers.generic.url_recognizer",
    "DateRecognizer": "predefined_recognizers.generic.date_recognizer",
    "UsSsnRecognizer": "predefined_recognizers.country_specific.us.us_ssn_recognizer",
    "UsPassportRecognizer": "predefined_recognizers.country_specific.us.us_passport_recognizer",
}


def _package_dir() -> Path:
    spec = importlib.util.find_spec(_ROOT)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("presidio-analyzer is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _stub_package(name: str, path: Path) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    module.__package__ = name
    return module


def load_recognizer_classes() -> dict[str, type]:
    """Return the recognizer classes by name, importing as little of Presidio as possible."""
    if _ROOT in sys.modules and not getattr(sys.modules[_ROOT], "_pii_stub", False):
        return {cls: getattr(importlib.import_module(f"{_ROOT}.{mod}"), cls) for cls, mod in RECOGNIZERS.items()}
    root_dir = _package_dir()
    stubs: dict[str, types.ModuleType] = {}
    root = _stub_package(_ROOT, root_dir)
    root._pii_stub = True
    stubs[_ROOT] = root
    for rel in _PACKAGES:
        stubs[f"{_ROOT}.{rel}"] = _stub_package(f"{_ROOT}.{rel}", root_dir.joinpath(*rel.split(".")))
    # iban_recognizer imports NlpArtifacts for a type annotation only; don't let it pull spaCy in.
    nlp_stub = types.ModuleType(f"{_ROOT}.nlp_engine")
    nlp_stub.NlpArtifacts = object
    stubs[nlp_stub.__name__] = nlp_stub
    added = [name for name in stubs if name not in sys.modules]
    for name in added:
        sys.modules[name] = stubs[name]
    try:
        for rel, names in _CORE:
            module = importlib.import_module(f"{_ROOT}.{rel}")
            for attr in names:
                setattr(root, attr, getattr(module, attr))
        return {cls: getattr(importlib.import_module(f"{_ROOT}.{mod}"), cls) for cls, mod in RECOGNIZERS.items()}
    finally:
        for name in added:
            if sys.modules.get(name) is stubs[name]:
                del sys.modules[name]

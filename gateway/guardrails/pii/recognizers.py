"""The fast-tier registry: which detector finds each entity type, built on Presidio's pattern recognizers and their validators.

Presidio's `analyze()` scans the whole text with its own broad regexes (about 3 ms for a 300-word text
across the generic recognizers), so each detector here first checks cheap trigger characters, finds
candidates with a narrow regex, and only then asks the Presidio recognizer to validate or invalidate
the candidate (Luhn, IBAN checksum, SSN invalidation, `ipaddress`, tldextract). Phone numbers are
validated with `phonenumbers` on candidates only, never with Presidio's region-by-region matcher.
"""

from __future__ import annotations

from gateway.guardrails.pii._presidio import load_recognizer_classes
from gateway.guardrails.pii.cards import CardDetector
from gateway.guardrails.pii.emails import EmailDetector, ObfuscatedEmailDetector
from gateway.guardrails.pii.national_ids import IbanDetector, PassportDetector, SsnDetector
from gateway.guardrails.pii.network import IpDetector, UrlDetector
from gateway.guardrails.pii.numeric_scan import NumericScan
from gateway.guardrails.pii.phones import PhoneDetector
from gateway.guardrails.pii.secrets import SecretDetector

__all__ = ["NumericScan", "build_fast_detectors"]


def build_fast_detectors(entities: frozenset[str]) -> list:
    """The enabled detectors; built once at start-up. Numeric ones share one NumericScan."""
    classes = load_recognizer_classes()
    ip = IpDetector(classes)
    numeric = {
        "CREDIT_CARD": CardDetector(classes),
        "US_SSN": SsnDetector(),
        "IBAN_CODE": IbanDetector(classes),
        "US_PASSPORT": PassportDetector(),
        "PHONE_NUMBER": PhoneDetector(ip._invalidate if "IP_ADDRESS" in entities else None),
    }
    scanned = [d for e, d in numeric.items() if e in entities]
    if "IP_ADDRESS" in entities:
        scanned.append(ip)
    detectors: list = [NumericScan(scanned)] if scanned else []
    other = {
        "EMAIL_ADDRESS": [EmailDetector(classes), ObfuscatedEmailDetector()],
        "IP_ADDRESS": [ip],
        "URL": [UrlDetector()],
        "SECRET": [SecretDetector()],
    }
    for entity, found in other.items():
        if entity in entities:
            detectors.extend(found)
    return detectors

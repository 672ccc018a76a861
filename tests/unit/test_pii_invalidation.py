"""Differential test of every recognizer's invalidation against its shape, after a clear cue.

For each entity type hypothesis writes values that have the type's shape; after a cue each must be
found unless a fact about the number rejects it: a failed checksum (Luhn, IBAN mod-97), a structure
that is never issued (SSN area 000/666/9xx, group 00, serial 0000), an address that cannot exist.
The oracle here is written independently of the detectors, so a list of "sample" values, a guess
that a number is an example, cannot veto a value without this test failing.
"""

from __future__ import annotations

import ipaddress
import string

import phonenumbers
import pytest
import tldextract
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.guardrails.pii import FAST_TIER_ENTITIES, PiiDetector

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALL = PiiDetector(entities=[e for e in FAST_TIER_ENTITIES if e != "URL"])


def found(entity: str, text: str, value: str) -> bool:
    start = text.index(value)
    return any(f.entity_type == entity and f.start <= start and f.end >= start + len(value)
               for f in ALL.detect(text))


# --- US_SSN: any 3-2-4 number; only the never-issued structures are rejected --------------------------

def ssn_possible(area: int, group: int, serial: int) -> bool:
    return area not in (0, 666) and area < 900 and group != 0 and serial != 0


@SETTINGS
@given(area=st.integers(0, 999), group=st.integers(0, 99), serial=st.integers(0, 9999),
       sep=st.sampled_from(["-", " ", ".", ""]),
       cue=st.sampled_from(["SSN", "SSN:", "my social security number is", "Social Security No.", "ssn#"]))
def test_ssn_after_a_cue_is_found_unless_never_issued(area, group, serial, sep, cue):
    value = f"{area:03}{sep}{group:02}{sep}{serial:04}"
    text = f"{cue} {value} thanks"
    assert found("US_SSN", text, value) == ssn_possible(area, group, serial), text


@pytest.mark.parametrize("value", ["123-45-6789", "078-05-1120", "111-11-1111", "123456789", "219-09-9999"])
def test_well_known_sample_ssns_are_found_after_a_cue(value):
    assert found("US_SSN", f"SSN {value}", value)


# --- CREDIT_CARD: issuer prefix and length from the networks' published ranges; Luhn decides -----------

ISSUERS = [("4", (13, 16, 19)), ("51", (16,)), ("55", (16,)), ("2221", (16,)), ("2720", (16,)), ("34", (15,)),
           ("37", (15,)), ("6011", (16, 19)), ("65", (16,)), ("3530", (16,)), ("36", (14,)), ("62", (16, 19)),
           ("6759", (12, 16, 19))]


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def group(digits: str, layout: str) -> str:
    if layout == "solid":
        return digits
    sep = "-" if layout == "dash" else " "
    # The layouts printed on cards: 4-6-5 (Amex), 4-6-4 (Diners), 4-3-3-3 (13-digit Visa), else fours.
    sizes = {15: (4, 6, 5), 14: (4, 6, 4), 13: (4, 3, 3, 3)}.get(len(digits)) or (4,) * (len(digits) // 4) + (
        (len(digits) % 4,) if len(digits) % 4 else ())
    out, i = [], 0
    for n in sizes:
        out.append(digits[i : i + n])
        i += n
    return sep.join(out)


@SETTINGS
@given(issuer=st.sampled_from(ISSUERS), data=st.data(), layout=st.sampled_from(["solid", "space", "dash"]),
       cue=st.sampled_from(["card number", "Kartennummer:", "numéro de carte", "CC#", "Visa"]))
def test_card_after_a_cue_is_found_iff_luhn_passes(issuer, data, layout, cue):
    prefix, lengths = issuer
    n = data.draw(st.sampled_from(lengths))
    digits = prefix + data.draw(st.text("0123456789", min_size=n - len(prefix), max_size=n - len(prefix)))
    value = group(digits, layout)
    text = f"{cue} {value} exp 12/29"
    assert found("CREDIT_CARD", text, value) == luhn_ok(digits), text


# --- IBAN_CODE: country length table (ISO 13616 registry); mod-97 decides ------------------------------

# BBAN layouts of the ISO 13616 registry: n digits, a upper-case letters, c either.
BBAN = {"DE": "18n", "FR": "10n11c2n", "ES": "20n", "IT": "1a10n12c", "NL": "4a10n", "PL": "24n", "GB": "4a14n",
        "AT": "16n", "BE": "12n", "CH": "5n12c", "PT": "21n", "SE": "20n", "DK": "14n", "NO": "11n", "FI": "14n",
        "IE": "4a14n", "LU": "3n13c", "CZ": "20n"}
CLASSES = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Z0-9]"}


def bban_regex(layout: str) -> str:
    import re

    return r"\A" + "".join(f"{CLASSES[k]}{{{n}}}" for n, k in re.findall(r"(\d+)([nac])", layout)) + r"\Z"


def iban_mod97(iban: str) -> int:
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97


@SETTINGS
@given(country=st.sampled_from(sorted(BBAN)), data=st.data(), fix=st.booleans(), spaced=st.booleans(),
       cue=st.sampled_from(["IBAN", "IBAN:", "Bankverbindung IBAN", "please pay to"]))
def test_iban_after_a_cue_is_found_iff_mod97_holds(country, data, fix, spaced, cue):
    bban = data.draw(st.from_regex(bban_regex(BBAN[country])))
    check = data.draw(st.integers(0, 99))
    if fix:
        check = 98 - iban_mod97(f"{country}00{bban}")
    iban = f"{country}{check:02}{bban}"
    value = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if spaced else iban
    text = f"{cue} {value} thanks"
    # ISO 13616 check digits are 02-98: 00, 01 and 99 never occur even where mod-97 holds.
    assert found("IBAN_CODE", text, value) == (iban_mod97(iban) == 1 and 2 <= int(iban[2:4]) <= 98), text


# --- IP_ADDRESS: every address ipaddress accepts -------------------------------------------------------

@SETTINGS
@given(octets=st.tuples(*[st.integers(0, 255)] * 4), cue=st.sampled_from(["IP", "client ip:", "from host", "src="]))
def test_ipv4_after_a_cue_is_found(octets, cue):
    value = ".".join(map(str, octets))
    address = ipaddress.ip_address(value)
    if address.is_loopback or address.is_unspecified or address.is_reserved:
        return  # 127.x, 0.0.0.0 and 240/4 (netmasks) name no one (docs/guardrails.md)
    text = f"{cue} {value} blocked"
    assert found("IP_ADDRESS", text, value), text


@SETTINGS
@given(addr=st.ip_addresses(v=6), cue=st.sampled_from(["IPv6", "client ip:", "from"]))
def test_ipv6_after_a_cue_is_found(addr, cue):
    if addr.is_loopback or addr.is_unspecified or addr.ipv4_mapped:
        return
    value = str(addr)
    text = f"{cue} {value} blocked"
    assert found("IP_ADDRESS", text, value), text


# --- PHONE_NUMBER: valid numbers of many regions, in their international and national formats ----------

REGIONS = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "AT", "CH", "BE", "PT", "SE", "DK", "NO", "FI", "IE",
           "CZ", "BR", "IN", "AU", "JP", "MX", "CA"]
FORMATS = {"intl": phonenumbers.PhoneNumberFormat.INTERNATIONAL, "e164": phonenumbers.PhoneNumberFormat.E164,
           "national": phonenumbers.PhoneNumberFormat.NATIONAL}


@SETTINGS
@given(region=st.sampled_from(REGIONS), kind=st.sampled_from([phonenumbers.PhoneNumberType.MOBILE,
                                                              phonenumbers.PhoneNumberType.FIXED_LINE]),
       tail=st.integers(0, 9999), fmt=st.sampled_from(sorted(FORMATS)),
       cue=st.sampled_from(["phone", "Tel.:", "call me on", "Telefon", "tél.", "móvil", "cellulare", "mobile:"]))
def test_valid_phone_number_after_a_cue_is_found(region, kind, tail, fmt, cue):
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return
    national = str(example.national_number)
    example.national_number = int(national[:-4] + f"{tail:04}")
    if not phonenumbers.is_valid_number(example):
        return
    value = phonenumbers.format_number(example, FORMATS[fmt])
    text = f"{cue} {value} thanks"
    assert found("PHONE_NUMBER", text, value), text


# --- US_PASSPORT and EMAIL_ADDRESS: shape alone, nothing to invalidate ---------------------------------

@SETTINGS
@given(value=st.from_regex(r"\A(?:[A-Z][0-9]{8}|[0-9]{9})\Z"), cue=st.sampled_from(["passport", "Passport no.",
                                                                                     "passport number:"]))
def test_passport_after_a_cue_is_found(value, cue):
    text = f"{cue} {value} issued 2019"
    assert found("US_PASSPORT", text, value) or found("US_SSN", text, value), text


_PSL = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)
LOCAL = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)


@SETTINGS
@given(user=LOCAL, sep=st.sampled_from(["", ".", "_", "+"]), user2=LOCAL, host=LOCAL,
       tld=st.sampled_from(["com", "de", "fr", "co.uk", "com.br", "io", "nl", "pl", "it", "es"]))
def test_email_with_a_public_suffix_is_found(user, sep, user2, host, tld):
    # `host.tld` must be a registrable domain: `sv.it` or `gov.pl` are public suffixes themselves (the
    # Public Suffix List, as shipped in tldextract's snapshot), and no one can own an address there.
    assume(_PSL(f"{host}.{tld}").domain != "")
    value = f"{user}{sep}{user2}@{host}.{tld}"
    text = f"mail: {value} thanks"
    assert found("EMAIL_ADDRESS", text, value), text

"""Scans of caller-controlled text stay linear: each rewritten scan finds what the quadratic one it replaced
found (property tests against the old code, kept here as the reference), and crafted worst cases finish in
well under a second for 100 KB (hang guards, not benchmarks: the linear cost is ~100-1000x below).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.validate import SourcedRule
from gateway.guardrails.deny_list import _MAX_GAP, _SPACES, DenyListGuard, DenyListRule
from gateway.guardrails.pii import PiiDetector
from gateway.guardrails.pii import emails as em
from gateway.guardrails.pii import national_ids as ids
from gateway.guardrails.pii import network as net
from gateway.guardrails.pii import numeric_scan as num
from gateway.guardrails.pii._presidio import load_recognizer_classes

SIZE = 100_000
BOUND_S = 1.0


def _fill(unit: str, size: int = SIZE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _cpu(fn: Callable[[str], object], text: str) -> float:
    t0 = time.process_time()
    fn(text)
    return time.process_time() - t0


@pytest.fixture(scope="module")
def classes() -> dict[str, type]:
    return load_recognizer_classes()


@pytest.fixture(scope="module")
def pii() -> PiiDetector:
    return PiiDetector()


# ---- e-mail: one match per '@' instead of a rescan of the whole token ----------------------------------


def _windowed_email_scan(self: em.EmailDetector, text: str) -> Iterator[tuple[int, int, float]]:
    """The scan EmailDetector.detect replaced (quadratic in a token of many '@'s): the reference."""
    at = text.find("@")
    n = len(text)
    while at != -1:
        lo = max(text.rfind(c, max(0, at - 64), at) for c in " \n\t") + 1
        hi = min(n, at + 192)
        for c in " \n\t":
            j = text.find(c, at, hi)
            if j != -1:
                hi = j
        next_at = -1
        for m in self._regex.finditer(text, lo, min(n, hi + 1)):
            if m.start() <= at < m.end():
                local, _, domain = m.group().rpartition("@")
                if self._validate_domain(domain) if em._URL_DELIMITERS.isdisjoint(local) else self._validate(m.group()):
                    yield m.start(), m.end(), 1.0
                next_at = m.end()
                break
        at = text.find("@", max(at + 1, next_at))


def test_presidio_email_pattern_is_the_pinned_one(classes: dict[str, type]) -> None:
    # EmailDetector's linear scan relies on this pattern's shape: review it before following a change.
    recognizer = classes["EmailRecognizer"]()
    assert recognizer.patterns[0].regex == em.PRESIDIO_EMAIL_PATTERN
    assert recognizer.global_regex_flags & ~em.re.DOTALL | em.re.UNICODE == em._EMAIL_FLAGS


def test_email_helpers_need_no_ignorecase() -> None:
    # The helpers are compiled without IGNORECASE: their classes must match the same code points either way.
    everything = "".join(map(chr, range(0x110000))).replace("\n", "")  # surrogates included: str holds them
    for cls in (em._A, em._B, r"\w"):
        caseless = em.re.compile(cls)
        folded = em.re.compile(cls, em._EMAIL_FLAGS)
        assert caseless.findall(everything) == folded.findall(everything), cls


EMAIL_PIECES = ["a", "b", "Z", "1", "_", "é", "Ⅻ", ".", "..", "-", "--", "!", "#", "'", "/", "?", ",", "@", "@@",
                " ", "\n", "\t", "\r", "\u00a0", "com", ".com", ".org", "x.io", "xn--80ak6aa92e", "a@b.com",
                "a" * 70, "b" * 100, "c." * 40, "d-" * 50, "e" * 190]
EMAIL_TEXTS = st.lists(st.sampled_from(EMAIL_PIECES), max_size=25).map("".join)


@settings(max_examples=1500, deadline=None)
@given(text=EMAIL_TEXTS)
def test_email_scan_matches_the_windowed_scan(classes: dict[str, type], text: str) -> None:
    det = em.EmailDetector(classes)
    assert list(det.presidio_matches(text)) == list(_windowed_email_scan(det, text))


@settings(max_examples=1500, deadline=None)
@given(text=EMAIL_TEXTS)
def test_email_spans_match_the_windowed_scan_before_validation(classes: dict[str, type], text: str) -> None:
    # Validation hides most spans with made-up domains; compare the pattern's spans themselves.
    det = em.EmailDetector(classes)
    det._validate = det._validate_domain = lambda value: True
    assert list(det.presidio_matches(text)) == list(_windowed_email_scan(det, text))


@pytest.mark.parametrize(
    "text",
    [
        # The previous '@''s domain runs past its 192-character cut: under this '@''s cut it matches and
        # ends at this '@', so this '@' has no match of its own; under its own cut it had none.
        "x@" + "a" * 195 + ".b@c.com",
        "x@" + "a" * 185 + ".b@c.com",
        "q@" + "a" * 191 + ".io@d.com",
        "x@a.b@c.com",  # the first match ends at the second '@'
        "y x@a.b@c.com",
        "a" * 100 + "@b.com",  # a local part longer than the 64-character look-back
        "." + "a" * 70 + "@gmail.com",
        "!a@b.com",
        "a!@b.com",
        "a.@b.com",
        "x@" + "a." * 100 + "com@d.com",
        "mail jane.doe+x@example.co.uk. and a/b@example.com",
    ],
)
def test_email_edge_cases_match_the_windowed_scan(classes: dict[str, type], text: str) -> None:
    det = em.EmailDetector(classes)
    assert list(det.presidio_matches(text)) == list(_windowed_email_scan(det, text))
    det._validate = det._validate_domain = lambda value: True
    assert list(det.presidio_matches(text)) == list(_windowed_email_scan(det, text))


@pytest.mark.parametrize(
    "text",
    [
        _fill("@"),  # 15 s for 25 KB before
        _fill("a@"),  # 32 s for 25 KB
        _fill("a-@"),
        _fill("a.", SIZE - 6) + "@x.com",  # a long local part ending in '.': no match, rescanned per start
        _fill("a.a.") + "@x_",
        _fill("a@b.c"),
        "x@" + _fill("a-") + "@",
    ],
)
def test_email_scan_is_linear(classes: dict[str, type], text: str) -> None:
    det = em.EmailDetector(classes)
    assert _cpu(lambda t: list(det.detect(t)), text) < BOUND_S


# ---- URLs: trailing punctuation stripped by index, not by slicing and recounting -------------------------


def _url_scan_by_slicing(text: str) -> Iterator[tuple[int, int, float]]:
    """UrlDetector.detect before (quadratic in a run of trailing ')'): the reference."""
    starts: list[int] = []
    i = text.find("://")
    while i != -1:
        for scheme in net._URL_SCHEMES:
            if text[max(0, i - len(scheme)) : i].lower() == scheme:
                starts.append(i - len(scheme))
                break
        i = text.find("://", i + 3)
    for www in net._WWW:
        i = text.find(www)
        while i != -1:
            if not i or not (text[i - 1].isalnum() or text[i - 1] in net._WWW_BEFORE):
                starts.append(i)
            i = text.find(www, i + 4)
    starts.sort()
    covered = 0
    for start in starts:
        if start < covered:
            continue
        m = net._URL_BODY.match(text, start)
        value = m.group()
        end = covered = m.end()
        while value and value[-1] in net._URL_TRAILING:
            if value[-1] == ")" and value.count("(") >= value.count(")"):
                break
            value = value[:-1]
            end -= 1
        if "." in value.split("//", 1)[-1]:
            yield start, end, 0.9


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(["http://", "HTTPS://", "ftp://", "www.", "WWW.", "a", ".com", ".", ")", "(", "()",
                                 "]", "_", "'", '"', "*", "?", "/", " ", "x"]), max_size=20).map("".join))
def test_url_trailing_strip_matches_slicing(text: str) -> None:
    assert list(net.UrlDetector().detect(text)) == list(_url_scan_by_slicing(text))


@pytest.mark.parametrize("tail", [")", ".", ").", "_)", "()"])
def test_url_trailing_strip_is_linear(tail: str) -> None:
    # 400 KB: a run of ')' took 9 s for 100 KB, of '.' (a copy per character) 0.2 s; now ~50 ms.
    text = "see http://a.b/" + _fill(tail, 4 * SIZE)
    assert _cpu(lambda t: list(net.UrlDetector().detect(t)), text) < BOUND_S


# ---- passports: the cue is looked for near each digit cluster, not in the whole text per cluster --------


def _passport_global_cue(det: ids.PassportDetector, text: str, lo: int, hi: int, lower: str):
    if "passport" not in lower:
        return
    for m in ids._PASSPORT.finditer(text, max(0, lo - 1), hi):
        if ids.context_before(lower, m.start(), ids._PASSPORT_CONTEXT, window=64):
            yield m.start(), m.end(), 0.8


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(["passport", "Passport ", "PASSPORT: ", "C42602015", "123456789", "12345678", " ", "x",
                                 "-", "\n", "a" * 30, "İ", "no. "]), max_size=16).map("".join))
def test_passport_local_cue_matches_the_global_check(text: str) -> None:
    det = ids.PassportDetector()
    lower = text.lower()
    for m in num._CLUSTER.finditer(text):
        lo, hi = m.span()
        if lo and text[lo - 1] in "+(":
            lo -= 1
        hi = min(len(text), hi + 2)
        assert list(det.detect_window(text, lo, hi, lower)) == list(_passport_global_cue(det, text, lo, hi, lower))


def test_passport_cue_check_is_linear() -> None:
    passports = PiiDetector(entities=["US_PASSPORT"])
    # Each of the 36,000 clusters searched the whole 400 KB for "passport" (~4 s); now ~40 ms.
    assert _cpu(passports.detect, _fill("12345678 p ", 4 * SIZE)) < BOUND_S
    assert passports.detect("passport no. C42602015 and 123456789")  # still found after the cue


# ---- deny list: may_continue prunes positions instead of folding every tail ----------------------------


def _fold_every_tail(guard: DenyListGuard, text: str) -> int:
    """DenyListGuard.may_continue before (quadratic in the hold-back window): the reference."""
    n = len(text)
    fold = guard._fold
    for i in range(max(0, n - guard.max_entity_len), n):
        if fold(text[i]) not in guard._first_chars:
            continue
        if guard._whole and i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
            continue
        tail = text[i:]
        if any(len(run) > _MAX_GAP for run in _SPACES.findall(tail)):
            continue
        norm = fold(_SPACES.sub(" ", tail))
        if any(p.startswith(norm) for p in guard._phrases):
            return i
    return n


def _deny(phrases: list[str], case_sensitive: bool = False, whole_words: bool = True) -> DenyListGuard:
    rule = DenyListRule(id="d", type="deny_list", phrases=phrases, case_sensitive=case_sensitive, whole_words=whole_words)
    return DenyListGuard(rule, SourcedRule("test.toml", "guardrails[0]", {}))


DENY_WORDS = ["a", "ab", "A", "project", "falcon", "Σ", "σ", "ς", "ΑΣ", "İ", "i", "x_y", "é"]
DENY_GAPS = ["", " ", "  ", "     ", "\n", "\t", "\u00a0", "\u2003 ", "_", "-", "."]


@settings(max_examples=1000, deadline=None)
@given(
    phrases=st.lists(st.lists(st.sampled_from(DENY_WORDS), min_size=1, max_size=4).map(" ".join), min_size=1, max_size=3),
    text=st.lists(st.tuples(st.sampled_from(DENY_WORDS), st.sampled_from(DENY_GAPS)).map("".join), max_size=12).map("".join),
    case_sensitive=st.booleans(),
    whole_words=st.booleans(),
)
def test_deny_list_may_continue_matches_folding_every_tail(phrases: list[str], text: str, case_sensitive: bool,
                                                           whole_words: bool) -> None:
    guard = _deny(phrases, case_sensitive, whole_words)
    assert guard.may_continue(text) == _fold_every_tail(guard, text)


def test_deny_list_may_continue_stays_cheap_for_long_phrases() -> None:
    # Asked once per streamed chunk. Every position a candidate, none a phrase prefix: ~47 ms a call
    # before, ~5 ms now (what is left grows with the phrase's length, not the text's).
    guard = _deny(["a " * 300])
    text = _fill("a ", 6_000) + "b"
    t0 = time.process_time()
    for _ in range(20):
        assert guard.may_continue(text) == len(text)
    assert time.process_time() - t0 < BOUND_S / 2


# ---- the whole fast tier on crafted inputs of each entity type -------------------------------------------

PII_WORST = [
    "@", "a@", "a.a.@", "a-@", "a@b.c ", "1", "1 ", "1-", "12 ", "1234 ", "12345678 p ", "415-555-0132 ", "1.", "1:", "(1)",
    "1 x", ".", "-", "_", "aB3", "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0e ", "QWxhZGRpbjpvcGVuIHNlc2FtZQ==", ":", "a:", "abcd:",
    "1::1%z", "http://a.b/", "http://a.b/)", "www.", "DE89 3704 0044 0532 0130 00 ", "DE00", "AB12", "sk-", "ghp_",
    "github_pat_", "xoxb-", "AKIA", "AIza", "x at ", "x dot ", "a(at)", "a [at] b [dot] ", "123-45-6789 ", "1.2.3.4 ",
    "1.2.3.", "passport 123456789 ", "4111 1111 1111 1111 ", "41 ",
    # the phone cues, national layouts and look-alike rules, the IP version cues, the e-mail 'key=' trim
    "order 0171 1234567 ", "Tel.: 0676/1234567 ", "+49 151 12345678,", "1Z 435 754 79 3902 923 ", "tel tel 1 ",
    "on_call: 917 217 298 ", "20240315-142231 ", "123 45 6789 ", "06 12 34 56 78 ", "version 1.2.3.4 ",
    "registry/app:1.2.3.4 ", "v1.2.3.4 ", "a=", "KEY=a@b.de ", "a=a@", "0/", "+1,", "1,234,",
]


@pytest.mark.parametrize("unit", PII_WORST)
def test_pii_fast_tier_is_linear_on_crafted_runs(pii: PiiDetector, unit: str) -> None:
    assert _cpu(pii.detect, _fill(unit)) < BOUND_S


# ---- the same inputs through the engine's stream hold-back, which rescans its window on every chunk ------


def _stream_cpu(text: str, chunk: int) -> float:
    from gateway.context import RequestContext
    from gateway.guardrails.engine import Guardrails

    rules = [{"id": "pii", "type": "pii", "direction": "output"},
             {"id": "deny", "type": "deny_list", "phrases": ["project falcon"], "action": "redact", "direction": "output"}]
    guardrails = Guardrails.compile([SourcedRule("test.toml", f"guardrails[{i}]", r) for i, r in enumerate(rules)])
    scanner = guardrails.for_request(None, None).output_scanner(RequestContext("req", "chat", "openai", None, 0.0, "t", "s"))
    t0 = time.process_time()
    for i in range(0, len(text), chunk):
        scanner.feed(0, text[i : i + chunk])
    scanner.flush(0)
    scanner.close()
    return time.process_time() - t0


@pytest.mark.parametrize("unit", ["@", "a@", "a-@", "http://a.b/)", "12345678 p "])
def test_stream_holdback_is_linear_on_crafted_runs(unit: str) -> None:
    # Every 16-character chunk rescans the ~580-character window: the e-mail scan's quadratic window cost
    # made 25 KB of '@' take 23 s; 10 KB here takes ~50 ms.
    assert _stream_cpu(_fill(unit, 10_000), 16) < BOUND_S


# ---- prompt-injection scoring: one crafted run per rule family (the C and the Python path) -------------

INJECTION_WORST = [
    "my drop ", "drop my my ", "list the ", "show the system the system the ", "ignore the the the the the ",
    "new task from ", "no restrictions ", "<|im_start|> ", '"function_call" ', "ignorez les a b ", "ignora omite ",
    "ignoriere ", "system-prompt ", "vergeet vergeet ", "talimatları ", "игнорируй ", "системн", "системн ",
    "ысистемн", "忽略", "지시", "QWxhZGRpbjpvcGVuIHNlc2FtZQ== ", "h3ll0 ", "a1", "аa ", "\U000e0041", "a\u200b",
    # Document rules: addressing the model, exfiltration, images, concealment, extraction without the word.
    "\n# a", "\n#", "note to the ", "if you are a ", "dear ", "send send ", "send the passwords ", "![a](http://x/", "![",
    "render image ", "don't tell ", "without ", "repeat the text ", "continue everything ", "translate your ",
]
# Every rule's gate open, so its pattern runs over the whole crafted run.
_ALL_TRIGGERS = ("\ninstructions instruction prompt message rules system initial your the all what were are new task "
                 "ignore forget you no restrictions answer unrestricted ai reveal told before : ( [ < _ instrucciones "
                 "anweisungen consignes les istruzioni instructies talimatları инструкци системн 忽略 무시 note to if a dear send "
                  "http @ ![ render image tell user not don without telling mention this above repeat everything "
                  "text translate\n")


@pytest.mark.parametrize("accelerate", [True, False])
@pytest.mark.parametrize("unit", INJECTION_WORST)
def test_injection_score_is_linear_on_crafted_runs(unit: str, accelerate: bool) -> None:
    from gateway.guardrails.injection import InjectionDetector

    det = InjectionDetector(accelerate=accelerate)
    assert _cpu(det.score, _fill(unit) + _ALL_TRIGGERS) < BOUND_S


# ---- secrets: keyword assignments, URL credentials, PEM blocks, provider formats --------------------------


@pytest.mark.parametrize(
    "unit",
    [
        "password=", "password: '", "pass", "DB_PASSWORD=Ab1!", "--password ", "<password>", "<password>x",
        'key="SmtpPassword" value="', "mot de passe a b c d :", "password is ", "token ", "x_token_x.",
        "://a:", "://a:b@", "a:b@", "://" + ":" * 10 + "@", "?sig=%2B", "Authorization: Bearer ",
        "-----BEGIN PRIVATE KEY-----\n", "-----BEGIN RSA PRIVATE KEY-----\nAb1/", "\\n-----END PRIVATE KEY-----",
        "eyJhbGciOi.", ".eyJ" + "a" * 10, "hooks.slack.com/services/T", "/api/webhooks/1234567890123456/",
        "sk-" + "a" * 19 + " ", "ghp_" + "b" * 29 + " ", "SG." + "c" * 22 + ".", "Ab1" * 13 + " ",
    ],
)
def test_secret_scans_are_linear_on_crafted_runs(unit: str) -> None:
    from gateway.guardrails.pii.secrets import SecretDetector

    det = SecretDetector()
    for text in (_fill(unit), "-----BEGIN CERTIFICATE-----\n" + _fill(unit)):
        assert _cpu(lambda t: list(det.detect(t)), text) < BOUND_S, unit

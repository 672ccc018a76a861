"""Secrets as real traffic writes them: the seeded corpus of tests/quality/realistic_secrets.py scores
recall and precision >= 0.95 for every kind with at most 5% of clean texts flagged, for the secrets rule
alone and for the pass the demo config shares with its contact-PII rule; and literal cases of each
format, each hard negative and each tight span."""

from __future__ import annotations

import pytest

from gateway.guardrails.pii import PiiDetector
from tests.quality import realistic_secrets as corpus


@pytest.fixture(scope="module")
def secrets() -> PiiDetector:
    return PiiDetector(entities=["SECRET"])


def _assert_targets(result: dict) -> None:
    bad = {k: r for k, r in result["kinds"].items() if r["recall"] < 0.95 or r["precision"] < 0.95 or not r["gold"]}
    assert not bad, bad
    assert result["clean_flagged"] <= 0.05


@pytest.mark.parametrize("seed", [corpus.SEED, 2024])
@pytest.mark.parametrize("demo", [False, True], ids=["secrets-rule", "demo-shared-pass"])
def test_corpus_meets_the_targets(seed: int, demo: bool) -> None:
    samples = corpus.build(seed, per_template=20)
    _assert_targets(corpus.score(samples, corpus.detector(demo).detect))


def test_held_out_templates_meet_the_targets() -> None:
    samples = [s for s in corpus.build(7, per_template=30) if s.holdout]
    assert {s.kind for s in samples} >= set(corpus.KINDS)
    _assert_targets(corpus.score(samples, corpus.detector().detect))


def test_corpus_is_deterministic_and_labels_point_at_values() -> None:
    a, b = corpus.build(5, per_template=3), corpus.build(5, per_template=3)
    assert [(s.text, s.spans) for s in a] == [(s.text, s.spans) for s in b]
    assert sum(s.clean for s in a) >= len(a) // 5
    for s in a:
        for start, end, _ in s.spans:
            assert s.text[start:end].strip() == s.text[start:end] and end > start


def _found(det: PiiDetector, text: str) -> list[str]:
    return [text[f.start : f.end] for f in det.detect(text) if f.entity_type == "SECRET"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("DB_PASSWORD=Tr0ub4dor&3\n", "Tr0ub4dor&3"),
        ("PGPASSWORD=qQDHyOXwRzR7e7YVY psql -h db", "qQDHyOXwRzR7e7YVY"),
        ("  password: 'S3cure!pass'\n", "S3cure!pass"),
        ('{"user": "app", "password": "hunter2hunter2"}', "hunter2hunter2"),
        ('<add key="SmtpPassword" value="m4il!Relay" />', "m4il!Relay"),
        ("<password>Xy7#kLm2</password>", "Xy7#kLm2"),
        ("docker login -u ci --password 9fQ2-xk7L-p3", "9fQ2-xk7L-p3"),
        ("Server=db;User Id=sa;Password=Winter2024!;Encrypt=True", "Winter2024!"),
        ("postgres://admin:Pa55w0rd@db.example.com:5432/app", "Pa55w0rd"),
        ("mongodb+srv://u:s3cr%40t@cluster0.x.mongodb.net/db", "s3cr%40t"),
        ("REDIS_URL=redis://:0a9f8e7d6c5b@cache:6379/0", "0a9f8e7d6c5b"),
        ("amqp://guest:Gu3st-Pw@rabbit:5672/%2f", "Gu3st-Pw"),
        ("jdbc:sqlserver://h:1433;user=sa;password=w-g-c@MM9;encrypt=true", "w-g-c@MM9"),
        ("https://hooks.slack.com/services/T0ABCDEF12/B0ABCDEF34/abcdefghijklmnopqrstuvwx",
         "T0ABCDEF12/B0ABCDEF34/abcdefghijklmnopqrstuvwx"),
        ("AccountName=acme;AccountKey=" + "Ab3+" * 21 + "Ab==;EndpointSuffix=core.windows.net", "Ab3+" * 21 + "Ab=="),
        ("https://a.blob.core.windows.net/c/f?sv=2022&sp=r&sig=Xy%2Bz1Q%2F9abcdEFGH1234ijklMN%3D", "Xy%2Bz1Q%2F9abcdEFGH1234ijklMN%3D"),
        ("Authorization: Bearer abcDEF123456ghiJKL789", "abcDEF123456ghiJKL789"),
        ("Passwort: Sommer2024!\n", "Sommer2024!"),
        ("Mot de passe provisoire : Soleil#2023\n", "Soleil#2023"),
        ("la contraseña es Verano2024$ (cámbiala)", "Verano2024$"),
        ("dane: login jan, hasło: Kr4k0w!2024\n", "Kr4k0w!2024"),
        ("SG." + "a1B2c3D4e5F6g7H8i9J0kL" + "." + "Mn0pQr1sTu2vWx3yZa4bCd5eFg6hIj7kLm8nOp9qRs0", None),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", None),
        ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5owlC0EuMkc1oAoGCCqGSM49\n"
         "-----END EC PRIVATE KEY-----", "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5owlC0EuMkc1oAoGCCqGSM49"),
        ('"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\nBKcwggSjAgEAAoIBAQC7\\n'
         '-----END PRIVATE KEY-----\\n"', "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\nBKcwggSjAgEAAoIBAQC7"),
    ],
)
def test_secret_values_are_found_with_tight_spans(secrets: PiiDetector, text: str, value: str | None) -> None:
    expected = value if value is not None else text
    assert _found(secrets, text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJRTES\n"
        "MBAGA1UEChMJQmFsdGltb3JlMRMwEQYDVQQLEwpDeWJlclRydXN0MSIwIAYDVQQDExlC\n-----END CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n"
        "q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n-----END PUBLIC KEY-----",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl anna@laptop",
        '"integrity": "sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXGOH2YG1jrr2aeBX0lU3UGqv9ZVA=="',
        "golang.org/x/crypto v0.21.0 h1:X31++rzVUdKhX5sWmSOFZxx8UW/ldWx55cbf08iNAMA=",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b\nrequest_id=9b2e6f1c-4f3a-4d2b-9c1e-7a8b9c0d1e2f",
        "DB_PASSWORD=<your-password>\nAPI_TOKEN=${API_TOKEN}\nSECRET=changeme\nTOKEN={{ .Values.token }}",
        "password: '********'\ntoken: xxxxxxxxxxxxxxxx\napi_key: YOUR_API_KEY_HERE\nsecret: [REDACTED]",
        "postgres://app:${PGPASSWORD}@db:5432/app and https://user@docs.example.com and git@github.com:a/b.git",
        "password = os.environ['DB_PASSWORD']\ntoken = get_token(session)\nself.password = password",
        "password_file: /run/secrets/db\ntoken_url: https://login.example.com/token\nmax_tokens: 4096\nsecretName: tls",
        "Your password must be at least 12 characters. The password is case-sensitive. Passwort vergessen?",
        "export OPENAI_API_KEY=sk-...\nwebhook: https://hooks.slack.com/services/XXXXXXXXX/XXXXXXXXX/XXXXXXXXXXXXXXXXXXXXXXXX",
        "http://proxy.local:8080?next=user@example.com",
    ],
)
def test_look_alikes_are_not_secrets(secrets: PiiDetector, text: str) -> None:
    assert _found(secrets, text) == []


def test_a_secret_wins_an_overlap_in_the_shared_pass() -> None:
    # The demo config shares one pass between its secrets and contact-PII rules: the e-mail-shaped
    # 'pw@host' inside a database URL must not take the password's place.
    shared = PiiDetector(entities=["SECRET", "EMAIL_ADDRESS", "URL", "IP_ADDRESS"])
    text = "DATABASE_URL=postgres://app:Pa55w0rd@db.example.com:5432/app"
    assert [(f.entity_type, text[f.start : f.end]) for f in shared.detect(text)] == [("SECRET", "Pa55w0rd")]

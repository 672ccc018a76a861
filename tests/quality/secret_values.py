"""Values of every secret kind and the pieces texts are assembled from, for the realistic secrets corpus
(tests/quality/realistic_secrets.py): freshly generated in each format's alphabet and length."""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass, field

KINDS = ("password", "db_url", "webhook", "cloud", "provider_token", "jwt", "private_key")
SEED = 13


@dataclass
class Sample:
    text: str
    kind: str  # the kind the template shows (or, for a clean text, imitates)
    template: str
    holdout: bool
    spans: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.spans


class S:
    """A secret value inside a template's parts."""

    def __init__(self, kind: str, value: str) -> None:
        self.kind, self.value = kind, value


def assemble(parts: list, kind: str, template: str, holdout: bool) -> Sample:
    out, spans, pos = [], [], 0
    for p in parts:
        if isinstance(p, S):
            spans.append((pos, pos + len(p.value), p.kind))
            p = p.value
        out.append(p)
        pos += len(p)
    return Sample("".join(out), kind, template, holdout, spans)


# ---- values -------------------------------------------------------------------------------------------

WORDS = ["sommer", "winter", "falcon", "granite", "orbit", "harbor", "maple", "tiger", "velvet", "copper",
         "sunset", "river", "Bergen", "Lisboa", "Kraków", "soleil", "verano", "zomer", "estate", "kevat"]
NAMES = ["Anna", "Jonas", "Marie", "Luca", "Sofia", "Piotr", "Ingrid", "Mateo", "Elif", "Noah", "Chloé", "Jan"]
HOSTS = ["db.internal", "10.0.4.12", "pg-prod-01.eu-west-1.rds.amazonaws.com", "mysql.staging.acme.io",
         "cluster0.x1abc.mongodb.net", "redis-master.cache.svc.cluster.local", "rabbitmq.prod.local", "localhost"]
USERS = ["admin", "app_user", "svc-billing", "postgres", "root", "deploy", "reporting_ro", "ci"]


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def password(rng: random.Random, safe: str = "!#%*+-_.@^") -> str:
    shape = rng.randrange(6)
    if shape == 0:
        return rng.choice(WORDS).capitalize() + str(rng.randrange(1990, 2030)) + rng.choice(safe)
    if shape == 1:
        return _rand(rng, ALNUM + safe, rng.randrange(12, 24))
    if shape == 2:
        return "-".join(rng.choice(WORDS).capitalize() for _ in range(3)) + "-" + str(rng.randrange(10, 99))
    if shape == 3:
        return _rand(rng, HEX, 32)
    if shape == 4:
        return _rand(rng, ALNUM, rng.randrange(16, 40))
    return _rand(rng, string.ascii_lowercase + string.digits, rng.randrange(10, 16)) + rng.choice("!?$&")


def url_password(rng: random.Random) -> str:
    return password(rng, safe="-_.~") if rng.random() < 0.8 else _rand(rng, ALNUM, 8) + "%40" + _rand(rng, ALNUM, 6)


def provider_token(rng: random.Random) -> str:
    makers: list[Callable[[], str]] = [
        lambda: "ghp_" + _rand(rng, ALNUM, 36),
        lambda: "gho_" + _rand(rng, ALNUM, 36),
        lambda: "github_pat_11" + _rand(rng, ALNUM.upper()[26:] + string.digits, 20) + "_" + _rand(rng, ALNUM, 59),
        lambda: "glpat-" + _rand(rng, URLSAFE, 20),
        lambda: "xoxb-" + _rand(rng, string.digits, 12) + "-" + _rand(rng, string.digits, 13) + "-" + _rand(rng, ALNUM, 24),
        lambda: "xoxp-" + _rand(rng, string.digits, 11) + "-" + _rand(rng, string.digits, 12) + "-" + _rand(rng, HEX, 32),
        lambda: "sk_live_" + _rand(rng, ALNUM, 24),
        lambda: "rk_live_" + _rand(rng, ALNUM, 99),
        lambda: "sk-" + _rand(rng, ALNUM, 48),
        lambda: "sk-proj-" + _rand(rng, URLSAFE, 120),
        lambda: "sk-ant-api03-" + _rand(rng, URLSAFE, 93) + "AA",
        lambda: "AIza" + _rand(rng, URLSAFE, 35),
        lambda: "SG." + _rand(rng, URLSAFE, 22) + "." + _rand(rng, URLSAFE, 43),
        lambda: "SK" + _rand(rng, HEX, 32),
        lambda: "npm_" + _rand(rng, ALNUM, 36),
        lambda: "pypi-AgEIcHlwaS5vcmc" + _rand(rng, URLSAFE, 120),
        lambda: "hf_" + _rand(rng, ALNUM, 34),
        lambda: "shpat_" + _rand(rng, HEX, 32),
        lambda: "dop_v1_" + _rand(rng, HEX, 64),
    ]
    return rng.choice(makers)()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(rng: random.Random) -> str:
    header = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    claims = {"sub": str(rng.randrange(10**6)), "name": rng.choice(NAMES), "iat": 1700000000 + rng.randrange(10**7)}
    if rng.random() < 0.5:
        claims["scope"] = "read:orders write:orders"
    sig = b64url(bytes(rng.randrange(256) for _ in range(32 if header["alg"] != "RS256" else 64)))
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}.{sig}"


def pem_body(rng: random.Random, nbytes: int, width: int = 64, sep: str = "\n") -> str:
    raw = base64.b64encode(bytes(rng.randrange(256) for _ in range(nbytes))).decode()
    return sep.join(raw[i : i + width] for i in range(0, len(raw), width))


def private_key(rng: random.Random, kind: str, sep: str = "\n") -> list:
    """A PEM private key's parts; the label is on the body: its BEGIN and END lines are no secret."""
    label, nbytes, width = rng.choice([("RSA PRIVATE KEY", 1190, 64), ("PRIVATE KEY", 1216, 64),
                                       ("EC PRIVATE KEY", 121, 64), ("OPENSSH PRIVATE KEY", 400, 70)])
    return [f"-----BEGIN {label}-----{sep}", S(kind, pem_body(rng, nbytes, width, sep)), f"{sep}-----END {label}-----"]


def certificate(rng: random.Random, label: str = "CERTIFICATE") -> str:
    return f"-----BEGIN {label}-----\n{pem_body(rng, rng.randrange(600, 1300))}\n-----END {label}-----"


def ssh_public(rng: random.Random) -> str:
    kind = rng.choice(["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ"])
    body = _rand(rng, B64, 43 if "ed25519" in kind else 350)
    return f"{kind}{body} {rng.choice(NAMES).lower()}@laptop"


def aws_secret(rng: random.Random) -> str:
    return _rand(rng, B64, 40)


def azure_key(rng: random.Random) -> str:
    return base64.b64encode(bytes(rng.randrange(256) for _ in range(64))).decode()


def sas_sig(rng: random.Random) -> str:
    raw = base64.b64encode(bytes(rng.randrange(256) for _ in range(32))).decode()
    return raw.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


def placeholder(rng: random.Random) -> str:
    return rng.choice(["<your-password>", "${DB_PASSWORD}", "$DB_PASS", "{{ .Values.db.password }}", "changeme",
                       "********", "xxxxxxxxxxxx", "YOUR_API_KEY_HERE", "<REDACTED>", "%(db_password)s",
                       "${{ secrets.DEPLOY_TOKEN }}", "{{ vault_db_password }}", "your_token_here", "CHANGE_ME",
                       "[REDACTED]", "••••••••", "sk-...", "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"])



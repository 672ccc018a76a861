"""A seeded, realistic PII corpus: configs, logs, stack traces, CSV/JSON payloads, signatures and tickets.

    build(seed=13, n=1200) -> list[Record]

Templates are written as such documents look in several languages (en, de, fr, es, it, nl, pl, pt, sv);
slots in braces are filled from tests/quality/pii_values.py. PII slots (`{email}`, `{phone}`, `{card}`,
`{iban}`, `{ssn}`, `{ip}`) become labelled spans; look-alike slots (`{order}`, `{version}`, ...) are
hard negatives and carry no label. Half of the templates (odd positions) are the held-out half: tune
the detectors on `split="tune"` and check on `split="holdout"`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from tests.quality import pii_values as v

PII_SLOTS = {"email": ("EMAIL_ADDRESS", v.email), "phone": ("PHONE_NUMBER", lambda r: v.phone(r)[0]),
             "card": ("CREDIT_CARD", v.card), "iban": ("IBAN_CODE", v.iban), "ssn": ("US_SSN", v.ssn),
             "ip": ("IP_ADDRESS", v.ip), "ipv4": ("IP_ADDRESS", v.ipv4)}
PLAIN_SLOTS = {"name": lambda r: f"{r.choice(v.FIRST)} {r.choice(v.LAST)}", "first": lambda r: r.choice(v.FIRST),
               "n": lambda r: str(r.randint(2, 480)), "port": lambda r: str(r.choice([80, 443, 5432, 6379, 8080, 9200])),
               **v.LOOKALIKES}

WITH_PII = [
    # configuration files
    "[alerts]\nemail = \"{email}\"\nsms = \"{phone}\"\nthreshold = {n}\n",
    "notify:\n  on_call: {phone}\n  email: {email}\n  escalate_after: {n}m\nimage: registry.local/app:{version}\n",
    "SUPPORT_EMAIL={email}\nSUPPORT_PHONE={phone}\nAPP_VERSION={version}\nLISTEN=0.0.0.0:{port}\n",
    "# allowlist for the admin panel (ticket {invoice})\nallow_from = [\"{ipv4}\", \"{ipv4}\"]\nbind = \"127.0.0.1:{port}\"\n",
    # logs
    "{timestamp} INFO  auth: login ok user={email} ip={ip} session={uuid}\n{timestamp} WARN  rate limit near for {ip}\n",
    "{ipv4} - - {timestamp} \"GET /api/v2/orders/{order} HTTP/1.1\" 200 {n} \"-\" \"Mozilla/5.0\"\n",
    "{timestamp} ERROR payment declined card={card} order={order} amount={amount}\n",
    "Mar 14 09:12:{n} mail postfix/smtpd[{n}]: connect from unknown[{ipv4}]\nto=<{email}>, relay=none, status=deferred\n",
    "{timestamp} DEBUG sms gateway → {phone}: \"Ihr Code ist {n}\" (msg {uuid})\n",
    # stack traces
    "Traceback (most recent call last):\n  File \"/srv/app/billing.py\", line {n}, in charge\n    gateway.charge(\"{card}\")\n"
    "ValueError: card {card} rejected for customer {email}\n",
    "java.lang.IllegalStateException: duplicate IBAN {iban} for account {order}\n\tat com.acme.pay.SepaService.validate"
    "(SepaService.java:{n})\n\tat com.acme.pay.SepaService.submit(SepaService.java:{n})\n",
    "Error: connect ECONNREFUSED {ipv4}:{port}\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:{n}:16)\n"
    "user context: {email}\n",
    # CSV and JSON payloads
    "id,name,email,phone,created\n{n},{name},{email},{phone},{timestamp}\n{n},{name},{email},{phone},{timestamp}\n",
    "kunde;iban;betrag;verwendungszweck\n{name};{iban};{amount};Rechnung {invoice}\n",
    "{{\"customer\": {{\"name\": \"{name}\", \"email\": \"{email}\", \"phone\": \"{phone}\"}}, \"order_id\": \"{order}\", "
    "\"version\": \"{version}\"}}",
    "{{\"event\": \"signup\", \"ts\": \"{timestamp}\", \"client_ip\": \"{ip}\", \"user\": {{\"mail\": \"{email}\"}}}}",
    "{{\"payment\": {{\"pan\": \"{card}\", \"exp\": \"09/28\"}}, \"invoice\": \"{invoice}\", \"trace\": \"{uuid}\"}}",
    "{{\"applicant\": \"{name}\", \"ssn\": \"{ssn}\", \"dob\": \"1987-04-12\", \"ref\": \"{order}\"}}",
    # e-mail signatures
    "Mit freundlichen Grüßen\n{name}\nVertrieb Süd\nTel.: {phone}\nMobil: {phone}\nE-Mail: {email}\n",
    "Cordialement,\n{name}\nResponsable clientèle\nTél. : {phone}\n{email}\n",
    "Un saludo,\n{name}\nDepartamento de Atención al Cliente\nTeléfono: {phone} | Móvil: {phone}\n{email}\n",
    "Cordiali saluti,\n{name}\nUfficio acquisti\nTel. {phone}\nCell. {phone}\nEmail: {email}\n",
    "Met vriendelijke groet,\n{name}\nT: {phone}\nE: {email}\n",
    "Z poważaniem\n{name}\ntel. {phone}\ne-mail: {email}\n",
    "Best regards,\n{name} | Account Manager\nM {phone} | O {phone}\n{email}\n",
    "Med vänliga hälsningar\n{name}\nTelefon: {phone}\nE-post: {email}\n",
    "Atenciosamente,\n{name}\nTelefone: {phone}\n{email}\n",
    # tickets and chat
    "Ticket #{n}: Kunde {name} bittet um Rückruf unter {phone}, Bestellnummer {order}.",
    "Bonjour, je n'arrive pas à payer ma commande {order}. Ma carte {card} est refusée. Merci de me rappeler au {phone}.",
    "Hola, quiero cambiar la cuenta de domiciliación a {iban}. Mi teléfono es {phone}.",
    "Salve, il rimborso va sull'IBAN {iban}, intestato a {name}. Per domande: {email}.",
    "Hallo, kunt u mij terugbellen op {phone}? Het gaat om factuur {invoice}.",
    "Dzień dobry, proszę o zwrot na konto {iban}. Numer zamówienia: {order}. Mój telefon: {phone}.",
    "Hi, please update my SSN to {ssn} on the W-9, and send the form to {email}.",
    "Customer called from {phone} about order {order}; tracking {tracking} shows delivered. Card on file {card}.",
    "My social security number is {ssn} and my card is {card}, expiry 11/27.",
    "Bitte überweisen Sie den Betrag von {amount} auf folgendes Konto:\nIBAN: {iban}\nBIC: DEUTDEFFXXX\n",
    "Our server at {ipv4} keeps getting hit from {ip}; we run version {version}. Contact ops at {email}.",
    "Neue Mobilnummer: {phone} (alt: {phone})",
    "Numéro de carte : {card}\nDate d'expiration : 03/29\nTitulaire : {name}",
    "Please wire the deposit to IBAN {iban} and confirm by phone at {phone}.",
    "Tarjeta {card} caducada; pedido {order} en espera. Contacto: {email}",
]

NO_PII = [
    "[server]\nlisten = \"0.0.0.0:{port}\"\nworkers = {n}\nversion = \"{version}\"\n[db]\npool_size = {n}\n",
    "image: nginx:{version}\nreplicas: {n}\nports:\n  - containerPort: {port}\nrevision: {sha}\n",
    "{timestamp} INFO  request {uuid} completed in {n} ms (build {version}, commit {sha})\n",
    "{timestamp} WARN  retry {n}/5 for job {uuid}; upstream 127.0.0.1:{port} timed out\n",
    "Traceback (most recent call last):\n  File \"/usr/lib/python3.12/site-packages/app/main.py\", line {n}, in run\n"
    "KeyError: 'order_{n}'\n",
    "at org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:{n})\n"
    "at jdk.internal.reflect.GeneratedMethodAccessor{n}.invoke(Unknown Source)\n",
    "sku,qty,price,updated\nA-{n},{n},{amount},{timestamp}\nB-{n},{n},{amount},{timestamp}\n",
    "{{\"order_id\": \"{order}\", \"status\": \"shipped\", \"tracking\": \"{tracking}\", \"total\": \"{amount}\"}}",
    "{{\"id\": \"{uuid}\", \"created_at\": \"{timestamp}\", \"version\": \"{version}\", \"isbn\": \"{isbn}\"}}",
    "Ihre Bestellung {order} wurde versandt. Sendungsnummer: {tracking}. Rechnung {invoice} über {amount}.",
    "Votre commande n° {order} a été expédiée. Numéro de suivi : {tracking}. Facture {invoice}.",
    "Su pedido {order} está en camino. Número de seguimiento: {tracking}. Importe: {amount}.",
    "Il tuo ordine {order} è stato spedito, codice di tracciamento {tracking}.",
    "Uw bestelling {order} is verzonden. Track & trace: {tracking}. Factuurnummer {invoice}.",
    "Zamówienie nr {order} zostało wysłane. Numer przesyłki: {tracking}. Faktura {invoice}.",
    "Order number: {order}\nTracking number: {tracking}\nInvoice number: {invoice}\nPaid with card {masked_card}\n",
    "Upgraded from {version} to {version}; see ISBN {isbn} for the reference manual (p. {n}).",
    "Release {version} ({timestamp}): fixes #{n}, #{n}; checksum {sha}.",
    "Firmware {version} installed on {n} devices; next maintenance window {timestamp}.",
    "Meeting moved to {timestamp}, room {n}. Budget {amount}. Ref {invoice}.",
    "Lieferadresse: Hauptstraße {n}, {postcode}. Paketnummer {tracking}.",
    "Chrome/{version} Safari/537.36 — build {version} on kernel {version}",
    "The invoice {invoice} for order {order} ({amount}) is due on {timestamp}. Card {masked_card} will be charged.",
    "Connection to localhost:{port} refused; bind 0.0.0.0:{port} instead (see runbook v{version}).",
    "ISBN {isbn}; ISBN {isbn}; catalogue no. {order}",
    "Kundennummer {order}, Vertragsnummer {invoice}, Zählerstand {n}, Datum {timestamp}",
    "Numer zamówienia {order}, numer faktury {invoice}, kwota {amount}",
    "Ticket #{n} closed by {first}: duplicate of #{n}. Affected version {version}.",
]

SLOT = re.compile(r"\{(\w+)\}")


@dataclass
class Record:
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    template: int = 0
    has_pii: bool = True
    split: str = "tune"


def render(rng: random.Random, template: str) -> tuple[str, list[tuple[int, int, str]]]:
    out: list[str] = []
    spans: list[tuple[int, int, str]] = []
    pos = 0
    size = 0
    literal = template.replace("{{", "\0").replace("}}", "\1")
    for m in SLOT.finditer(literal):
        chunk = literal[pos : m.start()].replace("\0", "{").replace("\1", "}")
        out.append(chunk)
        size += len(chunk)
        name = m.group(1)
        if name in PII_SLOTS:
            etype, gen = PII_SLOTS[name]
            value = gen(rng)
            spans.append((size, size + len(value), etype))
        else:
            value = PLAIN_SLOTS[name](rng)
        out.append(value)
        size += len(value)
        pos = m.end()
    out.append(literal[pos:].replace("\0", "{").replace("\1", "}"))
    return "".join(out), spans


def build(seed: int = 13, n: int = 1200, no_pii_share: float = 0.4) -> list[Record]:
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        clean = rng.random() < no_pii_share
        pool = NO_PII if clean else WITH_PII
        i = rng.randrange(len(pool))
        text, spans = render(rng, pool[i])
        records.append(Record(text, spans, i, not clean, "holdout" if i % 2 else "tune"))
    return records

"""Values for the realistic PII corpus: PII as people and systems write it, and look-alikes that are not PII.

Each generator takes a `random.Random` and returns a string. Phone layouts follow each country's
national conventions (numbering plans and the groupings its operators print), written out by hand from
public numbering-plan documents, not from the detector's patterns; every generated number is checked
valid for its region with `phonenumbers` so that a label is never wrong. Cards carry real issuer
prefixes and a Luhn check digit; IBANs the registry's BBAN layout and a mod-97 check.
"""

from __future__ import annotations

import random
import string

import phonenumbers

FIRST = ["Anna", "Lukas", "Marie", "Jonas", "Sophie", "Pierre", "Camille", "Lucía", "Javier", "Giulia", "Marco",
         "Daan", "Sanne", "Katarzyna", "Piotr", "João", "Ingrid", "Erik", "Siobhan", "James", "Emily", "Zoë"]
LAST = ["Schmidt", "Müller", "Dubois", "Lefèvre", "García", "Fernández", "Rossi", "Bianchi", "de Vries",
        "Jansen", "Kowalski", "Nowak", "Silva", "Lindqvist", "Murphy", "Smith", "O'Brien", "Weiß"]
DOMAINS = ["gmail.com", "web.de", "gmx.de", "orange.fr", "free.fr", "telefonica.es", "libero.it", "ziggo.nl",
           "wp.pl", "onet.pl", "sapo.pt", "outlook.com", "acme-industries.co.uk", "firma.de", "example-shop.eu",
           "uni-heidelberg.de", "posteo.de", "yahoo.es", "bluewin.ch", "telia.se", "icloud.com", "hotmail.fr"]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _fill(rng: random.Random, layout: str) -> str:
    """'#' is any digit, 'N' a digit 2-9."""
    return "".join(rng.choice(string.digits) if c == "#" else rng.choice("23456789") if c == "N" else c
                   for c in layout)


def email(rng: random.Random) -> str:
    first = rng.choice(FIRST).lower().translate(str.maketrans("üéèíöëçãoà", "ueeioecaoa"))
    last = rng.choice(LAST).lower().replace(" ", "").replace("'", "").translate(str.maketrans("üèáößé", "ueaosе"))
    last = "".join(c for c in last if c.isascii())
    local = rng.choice([f"{first}.{last}", f"{first[0]}.{last}", f"{first}{rng.randint(1, 99)}", f"{last}.{first}",
                        f"{first}_{last}", "info", "support", "buchhaltung", f"{first}+shop"])
    return f"{local}@{rng.choice(DOMAINS)}"


# (region, layouts): '#'/'N' are filled, the result must be a valid number of the region.
PHONE_LAYOUTS: dict[str, list[str]] = {
    "US": ["(N##) N##-####", "N##-N##-####", "N##.N##.####", "+1 N##-N##-####", "+1 (N##) N##-####", "1-N##-N##-####",
           "+1 N## N## ####"],
    "GB": ["020 7### ####", "+44 20 7### ####", "07### ######", "+44 7### ######", "0161 ### ####",
           "+44 (0)20 7### ####", "01632 ######"],
    "DE": ["030 ########", "+49 30 ########", "0151 ########", "+49 151 ########", "089 #######", "+49 (0)89 #######",
           "0171/#######", "0221 #######", "+49 221 #######", "0160-#######", "06221 ######"],
    "FR": ["01 ## ## ## ##", "06 ## ## ## ##", "+33 6 ## ## ## ##", "+33 (0)1 ## ## ## ##", "07.##.##.##.##",
           "04 ## ## ## ##", "+33 1 ## ## ## ##"],
    "ES": ["+34 91# ### ###", "91# ## ## ##", "6## ### ###", "+34 6## ## ## ##", "93# ### ###", "+34 6########"],
    "IT": ["+39 06 #### ####", "06 ########", "3## ### ####", "+39 3## ### ####", "02 #### ####", "+39 02 ########"],
    "NL": ["020 ### ####", "+31 20 ### ####", "06-########", "+31 6 ########", "06 ## ## ## ##", "010-#######"],
    "PL": ["+48 5## ### ###", "+48 6## ### ###", "22 ### ## ##", "+48 22 ### ## ##", "6##-###-###", "5## ### ###"],
    "AT": ["+43 1 #######", "01 #######", "0664 #######", "+43 664 #######", "0676/#######"],
    "CH": ["+41 44 ### ## ##", "044 ### ## ##", "079 ### ## ##", "+41 79 ### ## ##"],
    "BE": ["+32 2 ### ## ##", "02 ### ## ##", "047# ## ## ##", "+32 47# ## ## ##"],
    "PT": ["+351 21# ### ###", "91# ### ###", "+351 91# ### ###"],
    "SE": ["08-### ### ##", "+46 8 ### ### ##", "070-### ## ##", "+46 70 ### ## ##"],
    "DK": ["+45 ## ## ## ##", "+45 ########"],
    "IE": ["+353 1 ### ####", "01 ### ####", "08# ### ####", "+353 8# ### ####"],
    "BR": ["+55 11 9####-####", "(11) 9####-####", "+55 21 9#### ####"],
    "IN": ["+91 9#### #####", "+91 98### #####", "098## #####"],
    "AU": ["+61 2 #### ####", "(02) #### ####", "04## ### ###", "+61 4## ### ###"],
    "JP": ["+81 3-####-####", "03-####-####", "090-####-####", "+81 90-####-####"],
    "MX": ["+52 55 #### ####", "+52 1 55 #### ####"],
}


def phone(rng: random.Random, region: str | None = None) -> tuple[str, str]:
    """(number as written, region)."""
    region = region or rng.choice(sorted(PHONE_LAYOUTS))
    for _ in range(200):
        layout = rng.choice(PHONE_LAYOUTS[region])
        value = _fill(rng, layout)
        try:
            parsed = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return value, region
    raise AssertionError(f"no valid {region} number from {PHONE_LAYOUTS[region]}")


# (prefix, length, grouping): real issuer ranges; grouping as the card face or a form prints it.
CARDS = [("4", 16, "4444"), ("4", 16, "solid"), ("51", 16, "4444"), ("55", 16, "4444"), ("2223", 16, "4444"),
         ("2720", 16, "solid"), ("34", 15, "465"), ("37", 15, "465"), ("37", 15, "solid"), ("6011", 16, "4444"),
         ("65", 16, "4444"), ("3530", 16, "4444"), ("36", 14, "464"), ("62", 16, "4444"), ("62", 19, "solid"),
         ("4", 19, "44443"), ("6759", 16, "4444"), ("4", 13, "solid")]


def _luhn_complete(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    prefix, n, grouping = rng.choice(CARDS)
    digits = _luhn_complete(prefix + _digits(rng, n - len(prefix) - 1))
    if grouping == "solid":
        return digits
    sep = rng.choice([" ", " ", "-"])
    out, i = [], 0
    for g in grouping:
        out.append(digits[i : i + int(g)])
        i += int(g)
    return sep.join(out)


IBAN_BBAN = {"DE": "18n", "FR": "10n11c2n", "ES": "20n", "IT": "1a10n12c", "NL": "4a10n", "PL": "24n",
             "GB": "4a14n", "AT": "16n", "BE": "12n", "CH": "5n12c", "PT": "21n", "SE": "20n", "IE": "4a14n",
             "LU": "3n13c", "DK": "14n", "FI": "14n"}


def iban(rng: random.Random, country: str | None = None) -> str:
    import re

    country = country or rng.choice(sorted(IBAN_BBAN))
    bban = ""
    for n, kind in re.findall(r"(\d+)([nac])", IBAN_BBAN[country]):
        chars = {"n": string.digits, "a": string.ascii_uppercase, "c": string.digits + string.ascii_uppercase}[kind]
        bban += "".join(rng.choice(chars) for _ in range(int(n)))
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    value = f"{country}{check:02}{bban}"
    if rng.random() < 0.5:
        value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def ssn(rng: random.Random) -> str:
    while True:
        area, group, serial = rng.randint(1, 899), rng.randint(1, 99), rng.randint(1, 9999)
        if area != 666:
            break
    sep = rng.choice(["-", "-", " ", ""])
    return f"{area:03}{sep}{group:02}{sep}{serial:04}"


def ipv4(rng: random.Random) -> str:
    first = rng.choice([rng.randint(1, 126), rng.randint(128, 223)])
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    groups[0] = rng.choice(["2001", "2a02", "2600", "2a01"])
    text = ":".join(groups)
    if rng.random() < 0.5:
        text = ":".join(groups[:3]) + "::" + ":".join(groups[6:])
    return text


def ip(rng: random.Random) -> str:
    return ipv6(rng) if rng.random() < 0.25 else ipv4(rng)


# ---- look-alikes: numbers that are not personal data ------------------------------------------------

def order_number(rng: random.Random) -> str:
    return rng.choice([_fill(rng, "###-#######-#######"), _fill(rng, "#######"), _fill(rng, "A-######"),
                       _fill(rng, "##########"), _fill(rng, "ORD-####-######"), _fill(rng, "####-####-####"),
                       _fill(rng, "###-###-####"), _fill(rng, "#### #### ####")])


def tracking_number(rng: random.Random) -> str:
    return rng.choice([_fill(rng, "1Z ### ### ## #### ###").replace(" ", "", 0), _fill(rng, "1Z###AA1########"),
                       _fill(rng, "9400 #### #### #### #### ##"), _fill(rng, "00340434#############"),
                       _fill(rng, "JJD##################"), _fill(rng, "RR#########DE"), _fill(rng, "LX#########CN"),
                       _fill(rng, "#### #### ####")])


def version(rng: random.Random) -> str:
    a, b, c, d = rng.randint(0, 20), rng.randint(0, 40), rng.randint(0, 300), rng.randint(0, 9999)
    return rng.choice([f"{a}.{b}.{c}", f"v{a}.{b}.{c}", f"{a}.{b}.{c}.{d}", f"{a}.{b}.{c}-rc.{rng.randint(1, 5)}",
                       f"{a}.{b}", f"{a}.{b}.{c}.{rng.randint(0, 255)}", f"{rng.randint(100, 130)}.0.{d}.{rng.randint(0, 200)}"])


def uuid(rng: random.Random) -> str:
    h = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def timestamp(rng: random.Random) -> str:
    y, mo, d, h, mi, s = (rng.randint(2019, 2026), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                          rng.randint(0, 59), rng.randint(0, 59))
    return rng.choice([f"{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{rng.randint(0, 999):03}Z",
                       f"{y}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}", f"{d:02}.{mo:02}.{y} {h:02}:{mi:02}",
                       f"{d:02}/{mo:02}/{y}", f"{rng.randint(1_600_000_000, 1_800_000_000)}",
                       f"[{d:02}/Mar/{y}:{h:02}:{mi:02}:{s:02} +0100]", f"{y}{mo:02}{d:02}-{h:02}{mi:02}{s:02}"])


def isbn(rng: random.Random) -> str:
    body = "978" + _digits(rng, 9)
    check = (10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body)) % 10) % 10
    full = body + str(check)
    return rng.choice([full, f"{full[:3]}-{full[3]}-{full[4:6]}-{full[6:12]}-{full[12]}",
                       f"{full[:3]}-{full[3:5]}-{full[5:9]}-{full[9:12]}-{full[12]}"])


def invoice_number(rng: random.Random) -> str:
    y = rng.randint(2019, 2026)
    return rng.choice([f"INV-{y}-{_digits(rng, 6)}", f"RE-{y}-{_digits(rng, 4)}", f"{y}/{_digits(rng, 5)}",
                       f"F{y}{_digits(rng, 6)}", f"FA-{_digits(rng, 8)}", f"{_digits(rng, 4)}-{_digits(rng, 5)}"])


def amount(rng: random.Random) -> str:
    n = rng.randint(1, 9_999_999)
    return rng.choice([f"{n:,}.{rng.randint(0, 99):02} USD", f"{n:,}".replace(",", ".") + f",{rng.randint(0, 99):02} €",
                       f"CHF {n:,}".replace(",", "'"), f"{n} zł", f"{n / 100:.2f}"])


def masked_card(rng: random.Random) -> str:
    last4 = _digits(rng, 4)
    return rng.choice([f"**** **** **** {last4}", f"XXXX-XXXX-XXXX-{last4}", f"ending in {last4}", f"•••• {last4}"])


def local_address(rng: random.Random) -> str:
    return rng.choice(["127.0.0.1", "0.0.0.0", "::1", "localhost", "127.0.0.53"])


def git_sha(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice([7, 12, 40])))


def postcode(rng: random.Random) -> str:
    return rng.choice([f"{_digits(rng, 5)} Berlin", f"{_digits(rng, 2)}-{_digits(rng, 3)} Kraków",
                       f"{_digits(rng, 4)} AB Amsterdam", f"{_digits(rng, 5)} Paris", f"SW1A {rng.randint(1, 9)}AA"])


LOOKALIKES = {"order": order_number, "tracking": tracking_number, "version": version, "uuid": uuid,
              "timestamp": timestamp, "isbn": isbn, "invoice": invoice_number, "amount": amount,
              "masked_card": masked_card, "local_address": local_address, "sha": git_sha, "postcode": postcode}

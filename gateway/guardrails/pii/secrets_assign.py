"""SECRET values that a key names rather than a format: `key = value` assignments, credentials inside
URLs and private-key PEM blocks.

This follows the maintained scanners' keyword detectors (detect-secrets' KeywordDetector, gitleaks'
generic rule): a key whose name says it holds a secret (`password`, `DB_PASS`, `api_key`, `AccountKey`,
`client_secret`, `Authorization`, ...) followed by a separator (`=`, `:`, `:=`, `=>`, an XML tag, a CLI
flag, or in prose a verb such as "is" / "ist" / "est") and a value on the same line. The finding is the
value alone, never the key. Values that are not secrets are dropped: placeholders (`<your-password>`,
`changeme`, `****`, `xxxx`, `your_api_key_here`), references (`${DB_PASSWORD}`, `$DB_PASS`,
`{{ .Values.pw }}`, `os.environ["PW"]`, `self.password`, `get_token()`), and keys that name something
about a secret rather than the secret (`password_file`, `token_url`, `secretName`, `max_tokens`,
`password_hash`, `client_id`). Decided: well-known default words such as `changeme`, `password` and
`secret` are placeholders (instructions to replace them), not secrets.

Every scan is gated by `str.find` of a literal (a cue stem, '://', 'PRIVATE KEY') and each regex is
anchored at such a place with bounded repeats, so the cost stays linear in the text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

# Lower-case stems of key names (and their European-language prose forms); only where one occurs is a
# key looked for.
_STEMS = ("pass", "secret", "token", "key", "auth", "cred", "sig", "pw", "wachtw", "kennw")
# Words of languages that seldom go without a non-ASCII letter: looked for only in non-ASCII text
# (each stem is a find over the whole text).
_STEMS_NON_ASCII = ("contrase", "senha", "hasł", "lösen", "salasan", "heslo", "jelsz", "adgangskod")
_KEY_CHARS = re.compile(r"[\w.\-]{0,48}")  # a key token, read forwards from its start
_AFTER_KEY_CHARS = frozenset("\"'`]=:> \t")  # what can follow a key: a closing quote, a separator, a space
_SEGMENTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-zß-ÿł]+|\d+")
# A key segment that says the value is a secret. 'secret' but not 'secretary'.
_STRONG = re.compile(r"password|passwd|passwort|passphrase|kennwort|wachtwoord|contrase[ñn]a|senha|has[łl]o|"
                     r"lösenord|salasana|heslo|jelsz[óo]|adgangskode|secret(?!ar)|credentials?$|(?:pass|pwd|pw|token)$|^passe$")
_KEY_PAIRS = frozenset({"api", "access", "private", "secret", "account", "shared", "signing", "encryption",
                        "master", "auth", "client", "app", "subscription", "service", "webhook", "session"})
# A key whose last segment is one of these names something about a secret, not the secret itself.
_NOT_VALUE = frozenset("""id ids name names file files path dir url uri urls endpoint host type types length len
    size count ttl expiry expires expiration expire policy policies hash hashed digest checksum sha sha1 sha256
    sha512 md5 fingerprint field fields header label ref refs env var vars limit limits max min mode format
    prefix suffix enabled enable disabled required reset hint question strength regex pattern template
    version algorithm alg method location provider store manager rotation age changed updated created at
    timeout usage budget encoding index position kind level class source prompt placeholder message msg
    error errors text title description help policy rule rules length lifetime valid validity duration
    secs seconds minutes days mask visible visibility input box dialog form button link page screen
    storage backend engine mount role roles scope scopes arn key_id keyid tokens""".split())
# After the key: the key's closing quote or bracket, then a separator, then the value.
_ASSIGN = re.compile(r"""["'`]?\]?[ \t]*(?P<sep>:=|=>|=(?!=)|:(?![:/])|>(?=[^<\s]))[ \t]*""")
_PROSE = re.compile(r"[ \t]+(?:(?:is|ist|lautet|est|es|è|é|jest|to|är|er|on|wynosi)[ \t]*:?[ \t]+)?", re.IGNORECASE)
_XML_VALUE = re.compile(r"""["'][ \t]+value[ \t]*=[ \t]*(?=["'])""")  # <add key="DbPassword" value="..."/>
# 'password for the VPN:', 'mot de passe provisoire :': a few words between the key and its colon.
_WORDS_COLON = re.compile(r"(?:[ \t]+[^\s:=\"'`<>]{1,20}){1,4}?[ \t]*:[ \t]+")
_FLAG = re.compile(r"[ \t]+(?=[^\s-])")  # '--password value'
_AUTH_SCHEME = re.compile(r"(?:Bearer|Basic|Token|Digest|ApiKey|Bot|token)[ \t]+")
_QUOTED = re.compile(r"""(?P<q>["'`])(?P<v>[^"'`\n\r]{1,256})(?P=q)""")
_BARE = re.compile(r"""[^\s"'`,;<>(){}\[\]]{1,256}""")
# A reference in code: dotted names made of words (self.password, config.getProperty, os.environ).
_WORD_IDENT = r"(?:[$_]*[A-Za-z][a-z0-9_]+(?:[A-Z][a-z0-9_]+)*|[A-Z][A-Z0-9_]+)"
_DOTTED_CALL = re.compile(rf"{_WORD_IDENT}(?:(?:\.|::|->){_WORD_IDENT})+")
_WORDY = re.compile(r"[A-Z]?[a-z]+(?:[A-Z][a-z]+)*|[A-Z]+")  # camelCase, Capitalised or SHOUTED words
_PLACEHOLDER_WORDS = frozenset("""password passwd pass passwort secret secrets token apikey changeme changeit
    example sample dummy placeholder redacted hidden masked removed none null nil undefined true false yes no
    string str required optional todo tbd fixme empty notset unset value secretvalue mysecret mypassword
    yourpassword yourtoken yoursecret yourapikey secretkey accesskey privatekey test testing foo bar foobar
    xyz abc abcd abcdef qwerty hunter""".split())
_PLACEHOLDER_SHAPES = re.compile(
    r"(?:^|[\W_])(?:your|my|insert|enter|replace|put|add|example|fake|dummy|sample)(?:[\W_]|$)|here$|x{4,}|X{4,}|"
    r"\.\.\.|…|^[*•xX#.?_\-]+$|^[\[({<$]|^%\(|^#\{|\{\{|\}\}$|://|^\.{0,2}/|^~/", re.IGNORECASE)

# In a URL a password may open with a %-escape; only references, masks and placeholders are dropped.
_URL_PLACEHOLDER = re.compile(r"^[$<{]|^[*•xX.]+$|x{4,}|X{4,}|^your[\W_]|[\W_]here$", re.IGNORECASE)
# A password may hold '?', '#' or '@' written raw (invalid, but people write them): the last '@' before
# the host ends it. The user part holds no ';' or '=', so a JDBC URL's ';password=...' is not read as one.
_URL_CREDS = re.compile(r"(?P<user>[^\s:/@?#'\"<>;=]{0,128}):(?P<pw>[^\s/'\"<>;]{1,256})@(?=[\w\[])")
_PORT = re.compile(r"\d{1,5}(?:[?#].*)?")
_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"(?:[A-Za-z0-9+/=:,\- \t\r\n]|\\[rn]){0,16384}")  # base64, 'Proc-Type:' lines
_PEM_GAP = re.compile(r"(?:[ \t\r\n]|\\[rn])*")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")


@functools.lru_cache(maxsize=4096)  # a stream rescans its window on every chunk: the same keys recur
def _is_secret_key(key: str, query: bool) -> bool:
    segs = [s.lower() for s in _SEGMENTS.findall(key)]
    if not segs or segs[-1] in _NOT_VALUE or len(segs) > 8:
        return False
    if segs[-1] == "key":
        return len(segs) >= 2 and segs[-2] in _KEY_PAIRS
    if segs[-1] in ("sig", "signature"):
        return query  # a URL's query: SAS tokens and signed links
    if segs[-1] in ("authorization", "auth") or segs[-1].endswith(("apikey", "accesskey", "secretkey", "privatekey",
                                                                  "accountkey", "authkey")):
        return True
    return any(_STRONG.search(s) for s in segs)


def _placeholder(value: str) -> bool:
    if len(value) < 4 or _PLACEHOLDER_SHAPES.search(value):
        return True
    if len(value) > 24:  # no placeholder word is this long; skip the per-character fold
        return len(set(value)) <= 2
    folded = "".join(c for c in value.lower() if c.isalnum())
    return folded in _PLACEHOLDER_WORDS or (len(set(value)) <= 2)


def _bare_is_literal(value: str, sep: str) -> bool:
    """An unquoted value: a literal in config files, a variable or call in code. Judge by its shape."""
    if _DOTTED_CALL.fullmatch(value):
        return False  # self.password, os.environ[...], get_token()
    if value.isidentifier() and not any(c.isdigit() for c in value):
        # Letters only: random letters are a literal; a variable (user_password, dbPassword) or a word is
        # one only on a config line ('=') and never with '_' or camelCase.
        if len(value) < 8 or "_" in value:
            return False
        if not _WORDY.fullmatch(value):
            return True
        return sep == "=" and (value.islower() or value.isupper())
    return True


def _prose_value(value: str) -> bool:
    """After 'password is': a secret only if it is not a plain word (letters with digits or symbols)."""
    has_alpha = any(c.isalpha() for c in value)
    marked = any(c.isdigit() or not (c.isalnum() or c in "-'") for c in value.rstrip("?!.,"))
    return len(value) >= 6 and has_alpha and marked


def _value_at(text: str, pos: int, prose: bool, sep: str) -> tuple[int, int] | None:
    m = _QUOTED.match(text, pos)
    if m is not None:
        s, e = m.span("v")
        value = m.group("v").strip()
        if value.startswith("-----BEGIN"):
            return None  # a PEM block: _pem_blocks owns it
        if prose and not _prose_value(value):
            return None
        return (s, e) if not _placeholder(value) else None
    if text.startswith(("Bearer", "Basic", "Token", "Digest", "ApiKey", "Bot", "token"), pos):
        a = _AUTH_SCHEME.match(text, pos)
        if a is not None:
            pos = a.end()
    m = _BARE.match(text, pos)
    if m is None:
        return None
    s, e = m.span()
    while e > s and text[e - 1] in ".:":  # sentence punctuation after the value
        e -= 1
    value = text[s:e]
    if text[e:e + 1] in ("(", "["):
        return None  # a call or an index: get_token(), env["PW"]
    if _placeholder(value) or not _bare_is_literal(value, sep) or (prose and not _prose_value(value)):
        return None
    return s, e


def keyword_values(text: str) -> Iterator[tuple[int, int, float]]:
    """Values of keys that name a secret, in any of the separators above."""
    lower = text.lower()
    hits: set[int] = set()
    for stem in _STEMS if lower.isascii() else _STEMS + _STEMS_NON_ASCII:
        i = lower.find(stem)
        while i != -1:
            hits.add(i)
            i = lower.find(stem, i + len(stem))
    if not hits:
        return
    done = -1
    n = len(text)
    for i in sorted(hits):
        if i < done:
            continue
        ke = _KEY_CHARS.match(text, i).end()
        done = ke
        if ke < n and text[ke] not in _AFTER_KEY_CHARS:
            continue  # 'keyboard.', 'passed,', 'author)': no separator can follow
        ks, floor = i, max(0, i - 48)
        while ks > floor and (text[ks - 1].isalnum() or text[ks - 1] in "_.-"):
            ks -= 1
        flag = text.startswith("--", ks)
        key = text[ks:ke].strip(".-")
        if not key:
            continue
        before = "-" if flag else text[ks - 1] if ks else ""
        query = before != "" and before in "?&"
        if not _is_secret_key(key, query):
            continue
        found = _after_key(text, ke, before)
        if found is not None:
            if query and "&" in text[found[0]:found[1]]:  # a query string's value ends at the next '&'
                found = (found[0], text.index("&", found[0]), found[2])
            yield found
            done = found[1]
        else:
            # Stems inside the value just looked at start no key of their own ('password=password=...'):
            # skipping them keeps the scan linear.
            run = _BARE.match(text, ke)
            done = run.end() if run is not None else ke


def _after_key(text: str, ke: int, before: str) -> tuple[int, int, float] | None:
    if before == "-" and ke < len(text) and text[ke] in " \t=":  # --password value / --password=value
        pos = ke + 1 if text[ke] == "=" else _FLAG.match(text, ke).end() if _FLAG.match(text, ke) else -1
        if pos < 0:
            return None
        span = _value_at(text, pos, False, "=")
        return (*span, 0.85) if span else None
    m = _XML_VALUE.match(text, ke)
    if m is not None:
        span = _value_at(text, m.end(), False, "=")
        return (*span, 0.85) if span else None
    m = _ASSIGN.match(text, ke)
    if m is not None and (m.group("sep") != ">" or before == "<"):
        sep = m.group("sep")
        if sep == ">":  # <password>value</password>
            close = text.find("<", m.end(), m.end() + 257)
            if close == -1:
                return None
            value = text[m.end():close].strip()
            return None if _placeholder(value) or not value else (m.end(), m.end() + len(value), 0.85)
        span = _value_at(text, m.end(), False, sep)
        return (*span, 0.85) if span else None
    for prose in (_WORDS_COLON, _PROSE):
        m = prose.match(text, ke)
        span = _value_at(text, m.end(), True, ":") if m is not None else None
        if span:
            return (*span, 0.75)
    return None


def url_credentials(text: str) -> Iterator[tuple[int, int, float]]:
    """The password of scheme://user:password@host (database, broker, git and HTTP URLs)."""
    if "@" not in text:
        return
    i = text.find("://")
    while i != -1:
        m = _URL_CREDS.match(text, i + 3)
        if m is not None:
            pw = m.group("pw")
            if not _URL_PLACEHOLDER.search(pw) and not _PORT.fullmatch(pw) and "".join(c for c in pw.lower() if c.isalnum()) not in _PLACEHOLDER_WORDS:
                yield m.start("pw"), m.end("pw"), 0.9
            i = text.find("://", m.end())
        else:
            i = text.find("://", i + 3)


def pem_private_keys(text: str) -> Iterator[tuple[int, int, float]]:
    """The body of a private key's PEM block (also one written with JSON's \\n escapes): the key material
    between its BEGIN and END lines, which are no secret. The BEGIN line is a finished token before the
    body starts, so a stream releases it and holds the body (a span that reaches the end may grow)."""
    i = text.find("PRIVATE KEY")
    while i != -1:
        start = text.rfind("-----BEGIN ", max(0, i - 40), i)
        m = _PEM_BEGIN.match(text, start) if start != -1 else None
        if m is None:
            i = text.find("PRIVATE KEY", i + 11)
            continue
        body = _PEM_BODY.match(text, m.end())
        footer = text.find("-----END ", m.end(), body.end() + 1)
        tail = _PEM_END.match(text, footer) if footer != -1 else None
        start = _PEM_GAP.match(text, m.end()).end()
        if tail is None:
            end = body.end()  # unterminated: up to the end of the body, so a stream holds it until the END line
        else:
            end = footer
            while end > start and (text[end - 1] in " \t\r\n" or text.endswith(("\\n", "\\r"), start, end)):
                end -= 2 if text[end - 2] == "\\" else 1
        if end > start:
            yield start, end, 0.95
        i = text.find("PRIVATE KEY", max(end, m.end()))

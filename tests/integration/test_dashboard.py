"""/dashboard over a real socket: who may see it, the login form, the session cookie and its flags,
and the page's own security headers. The browser test (tests/browser/) checks what it draws."""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlencode, urlsplit

import pytest

from gateway.http import admin_session

ADMIN_KEY = "admin-secret-0123456789"
ADMIN = '\n[admin]\nkey_env = "TEST_ADMIN_KEY"\n'


@pytest.fixture
def admin_gw(make_gateway, monkeypatch):
    monkeypatch.setenv("TEST_ADMIN_KEY", ADMIN_KEY)
    return make_gateway(extra=ADMIN)


def call(gw, method: str, path: str, headers: dict | None = None, body: bytes | None = None) -> http.client.HTTPResponse:
    """One request without following redirects (the test looks at the 303 and its Set-Cookie)."""
    conn = http.client.HTTPConnection(urlsplit(gw.url).netloc, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    resp.body = resp.read()
    conn.close()
    return resp


def login(gw, key: str, headers: dict | None = None) -> http.client.HTTPResponse:
    return call(gw, "POST", "/dashboard/login", body=urlencode({"key": key}).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})


def session_cookie(resp) -> tuple[str, list[str]]:
    """The cookie's value and its attributes, lower-cased."""
    header = resp.getheader("Set-Cookie")
    assert header, "no Set-Cookie"
    first, *attrs = [p.strip() for p in header.split(";")]
    name, _, value = first.partition("=")
    assert name == admin_session.COOKIE
    return value, [a.lower() for a in attrs]


def test_without_the_key_nothing_is_shown(admin_gw):
    assert call(admin_gw, "GET", "/stats").status == 401
    resp = call(admin_gw, "GET", "/dashboard")
    assert resp.status == 401
    assert resp.getheader("WWW-Authenticate", "").startswith("Bearer")
    # The answer is the login form, not the dashboard.
    assert b'action="/dashboard/login"' in resp.body and b"chart-rps" not in resp.body
    assert call(admin_gw, "GET", "/dashboard", {"x-admin-key": "wrong"}).status == 401
    assert call(admin_gw, "GET", "/dashboard", {"Cookie": f"{admin_session.COOKIE}={ADMIN_KEY}"}).status == 401


@pytest.mark.parametrize("header", ["Authorization", "x-admin-key"])
def test_the_admin_key_as_a_header_opens_the_page(admin_gw, header):
    value = f"Bearer {ADMIN_KEY}" if header == "Authorization" else ADMIN_KEY
    resp = call(admin_gw, "GET", "/dashboard", {header: value})
    assert resp.status == 200
    assert b"chart-rps" in resp.body and b'data-session="on"' in resp.body


def test_login_sets_a_signed_strict_httponly_cookie_that_reads_stats(admin_gw):
    resp = login(admin_gw, ADMIN_KEY)
    assert resp.status == 303 and resp.getheader("Location") == "/dashboard"
    value, attrs = session_cookie(resp)
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/" in attrs
    assert "secure" not in attrs  # plain http on loopback: a Secure cookie would never come back
    assert ADMIN_KEY not in value and admin_session.valid(value, ADMIN_KEY)
    cookie = {"Cookie": f"{admin_session.COOKIE}={value}"}
    assert call(admin_gw, "GET", "/dashboard", cookie).status == 200
    stats = call(admin_gw, "GET", "/stats", cookie)
    assert stats.status == 200 and b'"windows"' in stats.body
    # The cookie authorises reads only: an action still needs the key itself.
    assert call(admin_gw, "POST", "/admin/keys/test/revoke", cookie).status == 401


def test_a_wrong_key_at_the_login_form_sets_nothing(admin_gw):
    resp = login(admin_gw, "not-the-key")
    assert resp.status == 401 and resp.getheader("Set-Cookie") is None
    assert b"not the admin key" in resp.body


def test_cookie_is_secure_behind_an_https_proxy(admin_gw):
    _, attrs = session_cookie(login(admin_gw, ADMIN_KEY, {"X-Forwarded-Proto": "https"}))
    assert "secure" in attrs


def test_cross_site_login_is_refused(admin_gw):
    resp = login(admin_gw, ADMIN_KEY, {"Origin": "https://evil.example"})
    assert resp.status == 403 and resp.getheader("Set-Cookie") is None
    assert login(admin_gw, ADMIN_KEY, {"Origin": admin_gw.url}).status == 303


def test_a_forged_or_expired_token_is_refused(admin_gw):
    value, _ = session_cookie(login(admin_gw, ADMIN_KEY))
    forged = value[:-1] + ("0" if value[-1] != "0" else "1")
    other_key = admin_session.mint("another-admin-key")
    expired = admin_session.mint(ADMIN_KEY, now=0)
    for token in (forged, other_key, expired, "v1.9999999999.x.y", ""):
        assert call(admin_gw, "GET", "/stats", {"Cookie": f"{admin_session.COOKIE}={token}"}).status == 401, token


def test_logout_clears_the_cookie(admin_gw):
    resp = call(admin_gw, "POST", "/dashboard/logout")
    assert resp.status == 303 and resp.getheader("Location") == "/dashboard/login"
    value, attrs = session_cookie(resp)
    assert value in ("", '""') and "max-age=0" in attrs


def test_without_an_admin_key_the_dashboard_is_open(gateway):
    resp = call(gateway, "GET", "/dashboard")
    assert resp.status == 200 and b'data-session="off"' in resp.body
    assert call(gateway, "GET", "/dashboard/login").status == 303


def test_page_security_headers_and_no_inline_script(admin_gw):
    resp = call(admin_gw, "GET", "/dashboard", {"x-admin-key": ADMIN_KEY})
    csp = resp.getheader("Content-Security-Policy")
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert resp.getheader("X-Content-Type-Options") == "nosniff"
    assert resp.getheader("Cache-Control") == "no-store"
    html = resp.body.decode()
    assert 'name="viewport"' in html
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert scripts and all(not body.strip() for body in scripts)
    assert all(re.search(r'\bsrc="/dashboard/static/', tag) for tag in re.findall(r"<script\b[^>]*>", html))
    assert not re.search(r"\son[a-z]+=", html) and "style=" not in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


def test_static_files_need_no_key_and_only_known_names_are_served(admin_gw):
    js = call(admin_gw, "GET", "/dashboard/static/dashboard.js")
    assert js.status == 200 and js.getheader("Content-Type").startswith("text/javascript")
    css = call(admin_gw, "GET", "/dashboard/static/dashboard.css")
    assert css.status == 200 and css.getheader("Content-Type").startswith("text/css")
    for name in ("dashboard.html", "..%2Fadmin.py", "missing.js"):
        assert call(admin_gw, "GET", f"/dashboard/static/{name}").status == 404, name


def test_the_model_comparison_panels_and_their_script(admin_gw):
    html = call(admin_gw, "GET", "/dashboard", {"x-admin-key": ADMIN_KEY}).body.decode()
    assert 'id="comparison"' in html and 'id="drift"' in html
    assert '<script src="/dashboard/static/monitoring.js" defer></script>' in html
    js = call(admin_gw, "GET", "/dashboard/static/monitoring.js")
    assert js.status == 200 and js.getheader("Content-Type").startswith("text/javascript")
    # It reads the /stats keys the shadow, feedback and drift modules fill.
    for key in (b"stats.shadow", b"stats.feedback", b"stats.drift", b"jaccard", b"mean_score", b"psi"):
        assert key in js.body

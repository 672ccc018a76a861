"""The operator dashboard: `/dashboard`, its login form and its static files (`gateway/static/`).

The page is static HTML, CSS and one hand-written script that polls `/stats` and draws its charts as
SVG; nothing is built and nothing is fetched from elsewhere (the Content-Security-Policy allows this
origin only, and no inline script). With `[admin] key_env` set the page needs the admin key, as a
header or through the login form, which sets a signed session cookie (`admin_session`) that `/stats`
accepts for reads too. Without a key the page is open, like `/stats`.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from urllib.parse import urlsplit

from aiohttp import web

from gateway import __version__
from gateway.http import admin_session, ingress
from gateway.http.admin import check_admin
from gateway.http.admin_auth import admin_configured, match_key
from gateway.http.state import STATE

ASSET_TYPES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css", "history.js": "text/javascript",
               "requests.js": "text/javascript", "keys.js": "text/javascript", "keys.css": "text/css",
               "monitoring.js": "text/javascript"}
PAGES = ("dashboard.html", "login.html", "requests.html", "keys.html")
ASSETS = web.AppKey("dashboard_assets", dict)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
LOGIN_ERROR = b'<p class="login-error" role="alert">That is not the admin key.</p>'


def _load_assets() -> dict[str, bytes]:
    static = resources.files("gateway") / "static"
    assets = {name: (static / name).read_bytes() for name in (*ASSET_TYPES, *PAGES)}
    assets["dashboard.html"] = assets["dashboard.html"].replace(b"__VERSION__", __version__.encode())
    return assets


def _page(request: web.Request, name: str, status: int = 200, error: bool = False) -> web.Response:
    body = request.app[ASSETS][name]
    if name in ("dashboard.html", "requests.html", "keys.html") and admin_configured(request.app):
        body = body.replace(b'data-session="off"', b'data-session="on"')
    if error:
        body = body.replace(b"<!--error-->", LOGIN_ERROR)
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="gateway admin"'
    return web.Response(body=body, status=status, content_type="text/html", charset="utf-8", headers=headers)


def _authorised(request: web.Request) -> bool:
    try:
        check_admin(request)
    except web.HTTPUnauthorized:
        return False
    return True


def _https(request: web.Request) -> bool:
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or proto == "https"


def _same_origin(request: web.Request) -> bool:
    """A form post from another site is refused (SameSite covers the cookie, not the login itself)."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


async def dashboard(request: web.Request) -> web.Response:
    if not _authorised(request):
        return _page(request, "login.html", status=401)
    return _page(request, "dashboard.html")


async def keys_page(request: web.Request) -> web.Response:
    """The Keys page: the `/admin/keys` API in a table and a form (gateway/static/keys.js)."""
    if not _authorised(request):
        return _page(request, "login.html", status=401)
    return _page(request, "keys.html")


async def requests_page(request: web.Request) -> web.Response:
    """The request log (gateway/static/requests.js reads /admin/requests)."""
    if not _authorised(request):
        return _page(request, "login.html", status=401)
    return _page(request, "requests.html")


async def login_form(request: web.Request) -> web.Response:
    if not admin_configured(request.app) or _authorised(request):
        raise web.HTTPSeeOther("/dashboard")
    return _page(request, "login.html")


async def login(request: web.Request) -> web.Response:
    if not admin_configured(request.app):
        raise web.HTTPSeeOther("/dashboard")
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-site login refused")
    # The login form is open to anyone: bound its body in time like the API's (`body_timeout_s`).
    try:
        async with asyncio.timeout(request.app[STATE].runtime.server.body_timeout_s):
            form = await request.post()
    except TimeoutError:
        resp = web.Response(status=408, text="the request body did not arrive in time")
        resp.force_close()
        await resp.prepare(request)
        await resp.write_eof()
        ingress.close_connection(request)
        return resp
    given = form.get("key", "")
    key = match_key(request.app, given.strip()) if isinstance(given, str) and given.strip() else None
    if key is None:
        return _page(request, "login.html", status=401, error=True)
    response = web.HTTPSeeOther("/dashboard")
    # Signed with the key that logged in, so the session carries that key's role.
    response.set_cookie(admin_session.COOKIE, admin_session.mint(key.secret), max_age=admin_session.TTL_S, path="/",
                        httponly=True, samesite="Strict", secure=_https(request))
    raise response


async def logout(request: web.Request) -> web.Response:
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-site logout refused")
    response = web.HTTPSeeOther("/dashboard/login")
    response.del_cookie(admin_session.COOKIE, path="/", httponly=True, samesite="Strict", secure=_https(request))
    raise response


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSET_TYPES:
        raise web.HTTPNotFound()
    return web.Response(body=request.app[ASSETS][name], content_type=ASSET_TYPES[name], charset="utf-8",
                        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


def add_routes(app: web.Application) -> None:
    # Start-up, before serving: the files are small and read once (no file I/O on the event loop).
    app[ASSETS] = _load_assets()
    app.router.add_get("/dashboard", dashboard)
    app.router.add_get("/dashboard/keys", keys_page)
    app.router.add_get("/dashboard/requests", requests_page)
    app.router.add_get("/dashboard/login", login_form)
    app.router.add_post("/dashboard/login", login)
    app.router.add_post("/dashboard/logout", logout)
    app.router.add_get("/dashboard/static/{name}", asset)

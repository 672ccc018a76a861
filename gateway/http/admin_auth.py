"""Who may use the admin endpoints, and for what: `require_admin_read` and `require_admin_write`.

Admin keys come from `[admin] key_env` (role "admin") and `[[admin.keys]]` (each with a role). A key
is sent as `Authorization: Bearer <key>` or `x-admin-key`, and compared in constant time with each
configured one. Two roles:

- "read": the request log, history, stats, metrics, the config summary and the keys listed;
- "admin": everything "read" may, and changes (keys created, updated, revoked, rotated).

The dashboard's signed session cookie (`admin_session`, minted at login with the key that logged in)
carries that key's role. A cookie rides along on any same-site request, so it authorises a change
only with the `x-gateway-dashboard: 1` header, which a cross-site form cannot send and a cross-site
script could send only after a CORS preflight this server never grants, and with a same-origin
`Origin` when the browser sends one.

With no admin key configured the endpoints are open (as `[admin]` documents): every caller is an
"admin" named "open".
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from gateway.http import admin_session
from gateway.http.state import STATE

READ, ADMIN = "read", "admin"
DASHBOARD_HEADER = "x-gateway-dashboard"


@dataclass(frozen=True, slots=True)
class AdminIdentity:
    id: str  # "admin" ([admin] key_env), an [[admin.keys]] id, or "open" when no key is configured
    role: str  # "read" or "admin"
    via: str  # "key", "session" or "open"

    def as_record(self) -> dict[str, str]:
        return {"id": self.id, "role": self.role, "via": self.via}


@dataclass(frozen=True, slots=True)
class AdminKey:
    id: str
    secret: str
    role: str


def admin_keys(app: web.Application) -> list[AdminKey]:
    """The admin keys whose variables are set now (read per call: admin requests only)."""
    cfg = app[STATE].runtime.config.main.admin
    keys = []
    if cfg.key_env and os.environ.get(cfg.key_env):
        keys.append(AdminKey("admin", os.environ[cfg.key_env], ADMIN))
    for k in cfg.keys:
        secret = os.environ.get(k.key_env)
        if secret:
            keys.append(AdminKey(k.id, secret, k.role))
    return keys


def admin_configured(app: web.Application) -> bool:
    cfg = app[STATE].runtime.config.main.admin
    return bool(cfg.key_env or cfg.keys)


def match_key(app: web.Application, given: str) -> AdminKey | None:
    """The configured admin key equal to `given` (every one compared, in constant time)."""
    raw = given.encode("utf-8", "surrogateescape")  # non-UTF-8 header: a wrong key, not a 500
    found = None
    for k in admin_keys(app):
        if hmac.compare_digest(raw, k.secret.encode()):
            found = k
    return found


def session_key(app: web.Application, token: str) -> AdminKey | None:
    """The admin key that signed this dashboard session token, if it is valid."""
    if not token:
        return None
    for k in admin_keys(app):
        if admin_session.valid(token, k.secret):
            return k
    return None


def _error(exc: type[web.HTTPException], message: str, type_: str, code: str) -> web.HTTPException:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return exc(text=orjson.dumps(body).decode(), content_type="application/json")


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def identify(request: web.Request, *, change: bool) -> AdminIdentity:
    """The caller's admin identity; 401 in the OpenAI error shape when it has none."""
    if not admin_configured(request.app):
        return AdminIdentity("open", ADMIN, "open")
    auth = request.headers.get("Authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-admin-key", "")
    if given:
        k = match_key(request.app, given)
        if k is not None:
            return AdminIdentity(k.id, k.role, "key")
    if not change or (request.headers.get(DASHBOARD_HEADER) == "1" and _same_origin(request)):
        k = session_key(request.app, request.cookies.get(admin_session.COOKIE, ""))
        if k is not None:
            return AdminIdentity(k.id, k.role, "session")
    raise _error(web.HTTPUnauthorized, "admin key required", "authentication_error", "invalid_admin_key")


def require_admin_read(request: web.Request) -> AdminIdentity:
    """Any admin role (reads: the request log, history, stats, keys listed). Raises 401 otherwise."""
    return identify(request, change=False)


def require_admin_write(request: web.Request) -> AdminIdentity:
    """The "admin" role (changes). 401 without an admin key; 403 `admin_read_only` for a read-only one."""
    who = identify(request, change=True)
    if who.role != ADMIN:
        raise _error(web.HTTPForbidden, f"the admin key '{who.id}' is read-only (role \"read\"): this change needs "
                     "a key with role \"admin\"", "permission_error", "admin_read_only")
    return who

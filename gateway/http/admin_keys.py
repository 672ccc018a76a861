"""Keys over the admin API: `/admin/keys` (list, create), `/admin/keys/{id}` (show, update) and
`/admin/keys/{id}/revoke|unrevoke|rotate`.

Keys created here are documents in the shared store (`gateway.managed_keys`): hashed, never stored in
clear, and seen by every gateway sharing the store within a second. `[[keys]]` from the policy files
are listed read-only (`"source": "config"`); of them only revoke and unrevoke apply, as before. Reads
need any admin role, changes the "admin" role (`admin_auth`); each change is sealed into the audit
chain as a `key_change` record (`records.schema.build_key_change`) without the secret. Errors are in
the OpenAI shape: 400 with the field in `param`, 404 `unknown_key`, 409 `key_exists` or
`key_read_only`, 503 `store_unavailable` (not confirmed: a timed-out write may still land).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime, timezone
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.config.validate import ConfigError
from gateway.context import Principal
from gateway.errors import RETRY_AFTER_S
from gateway.http.admin_auth import AdminIdentity, require_admin_read, require_admin_write
from gateway.http.ids import new_ids
from gateway.http.state import STATE
from gateway.limits.worst_case import check_usd_budget, compile_worst_cases
from gateway.managed_keys import KeyDoc, ManagedKeys, SecretDigest, principal_of
from gateway.records.schema import build_key_change
from gateway.runtime import Runtime
from gateway.store.base import StoreError

ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
MAX_GRACE_S = 30 * 86400
DEFAULT_GRACE_S = 300.0
MAX_TS = 32503680000.0  # 3000-01-01T00:00:00Z
MEMORY_NOTE = ("the memory store keeps keys created here in this gateway process only: they are lost when it "
               "restarts, and other instances do not see them; set [store] url to Redis to share and keep them")


class LimitsIn(BaseModel):
    """A key's own limits: the keys of a `[[rate_limits]]` / `[[budgets]]` rule with `scope = "key"`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rps: int | None = Field(None, ge=0)
    rpm: int | None = Field(None, ge=0)
    tpm: int | None = Field(None, ge=0)
    tpd: int | None = Field(None, ge=0)
    concurrency: int | None = Field(None, ge=0)
    budget_usd: float | None = Field(None, ge=0)
    budget_window: Literal["day", "week", "month"] | None = None


class KeyFields(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    team: str | None = Field(None, min_length=1, max_length=128)
    user: str | None = Field(None, min_length=1, max_length=128)
    models: list[str] = Field([], max_length=256)
    tags: list[str] = Field([], max_length=16)
    expires_at: datetime | None = None
    description: str | None = Field(None, max_length=1000)
    limits: LimitsIn | None = None


    @field_validator("expires_at")
    @classmethod
    def _representable(cls, v: datetime | None) -> datetime | None:
        if v is not None and not 0 <= _epoch(v) <= MAX_TS:
            raise ValueError("a time from 1971 to 2999 (ISO-8601, e.g. 2027-01-31T00:00:00Z)")
        return v


class KeyCreate(KeyFields):
    id: str | None = Field(None, min_length=1, max_length=128, pattern=ID_PATTERN)


class Rotate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    grace_s: float = Field(DEFAULT_GRACE_S, ge=0, le=MAX_GRACE_S)


class ApiError(Exception):
    def __init__(self, status: int, type_: str, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.code, self.message, self.param = status, type_, code, message, param

    def response(self) -> web.Response:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        resp = _json(body, self.status)
        if self.status == 503:
            resp.headers["Retry-After"] = RETRY_AFTER_S
        return resp


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request_error", "invalid_request", message, param)


def _unknown(key_id: str) -> ApiError:
    return ApiError(404, "not_found_error", "unknown_key", f"no key with id '{key_id}' (neither a [[keys]] rule "
                    "nor a key created over the admin API)")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def _ts(value: datetime | None) -> float | None:
    return None if value is None else _epoch(value)


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    raw = await request.read()
    if not raw.strip(b" \t\r\n"):  # JSON's own whitespace only: bytes.strip() also drops \x0b and \x0c
        raw = b"{}"
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _bad("the body must be a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        param = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))
        msg = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise _bad(f"{param or 'body'}: {msg}", param or None) from None


def _check_models(rt: Runtime, models: list[str]) -> None:
    # As on /v1 (and as a [[keys]] rule's `models` at load), an alias the config does not declare: 404.
    for i, m in enumerate(models):
        if m not in rt.config.main.models:
            raise ApiError(404, "invalid_request_error", "model_not_found",
                           f"'{m}' is not a model alias this gateway serves", f"models[{i}]")


def _check_usd_budget(rt: Runtime, doc: KeyDoc) -> None:
    """A key's USD budget must price every target its models can reach, as a `[[budgets]]` rule must at load:
    an unpriced target costs $0 and the budget would silently stop counting."""
    usd = (doc.limits or {}).get("budget_usd")
    if not usd:
        return
    aliases = list(doc.models) or list(rt.router.routes)
    cases = compile_worst_cases({a: rt.router.reachable(a) for a in aliases if a in rt.router.routes}, rt.pricing)
    try:
        check_usd_budget("the admin API", "limits.budget_usd", usd, doc.models or None, cases)
    except ConfigError as exc:
        raise _bad(f"limits.budget_usd: {exc.expected}", "limits.budget_usd") from None


def store_info(rt: Runtime) -> dict[str, Any]:
    memory = rt.config.main.store.url.startswith("memory://")
    return {"kind": "memory" if memory else "redis", "persistent": not memory, "shared": not memory,
            "note": MEMORY_NOTE if memory else "keys created here are kept in the shared store and seen by every "
                                               "gateway that uses it within a second"}


def view(doc: KeyDoc, now: float) -> dict[str, Any]:
    return {"id": doc.id, "source": "api", "read_only": False, "team": doc.team, "user": doc.user,
            "models": doc.models, "tags": doc.tags, "description": doc.description, "expires_at": _iso(doc.expires_at),
            "expired": doc.expires_at is not None and now >= doc.expires_at, "limits": doc.limits,
            "revoked": doc.revoked, "created_at": _iso(doc.created_at), "updated_at": _iso(doc.updated_at),
            "secrets": [{"fingerprint": s.sha256[:8], "created_at": _iso(s.created_at), "valid_until": _iso(s.not_after)}
                        for s in doc.live_secrets(now)]}


def config_view(p: Principal, revoked: bool | None, now: float) -> dict[str, Any]:
    return {"id": p.key_id, "source": "config", "read_only": True, "team": p.team, "user": p.user,
            "models": list(p.models), "tags": list(p.tags), "description": None, "expires_at": _iso(p.expires_at),
            "expired": p.expires_at is not None and now >= p.expires_at, "limits": None, "revoked": revoked,
            "created_at": None, "updated_at": None, "secrets": []}


class KeysApi:
    """One admin request on keys: the runtime, the managed keys and the caller, for the handlers."""

    def __init__(self, request: web.Request, who: AdminIdentity) -> None:
        self.request = request
        self.who = who
        self.rt = request.app[STATE].runtime
        self.managed: ManagedKeys = self.rt.services.managed_keys
        self.request_id = new_ids(request.headers.get("x-request-id"), None, True)[0]

    async def fresh(self) -> None:
        """Read the store's newest documents first, so a change another gateway just made is seen."""
        await self.managed.refresh()

    def config_key(self, key_id: str) -> Principal | None:
        for p in self.rt.keys.principals():
            if p.key_id == key_id:
                return p
        return None

    def managed_doc(self, key_id: str) -> KeyDoc:
        doc = self.managed.get(key_id)
        if doc is not None:
            return doc
        if self.config_key(key_id) is not None:
            raise ApiError(409, "invalid_request_error", "key_read_only", f"the key '{key_id}' is a [[keys]] rule of "
                           "the policy files: change it there and reload (only revoke and unrevoke apply here)")
        raise _unknown(key_id)

    async def save(self, doc: KeyDoc, *, create: bool = False) -> None:
        if not await self.managed.write(doc, create=create):
            raise ApiError(409, "invalid_request_error", "key_exists", f"a key with id '{doc.id}' exists", "id")

    def audit(self, action: str, key_id: str, source: str, changes: dict[str, Any]) -> None:
        recorder = self.rt.services.recorder
        if recorder is not None:
            recorder.submit_admin(build_key_change(action, key_id, source, self.who.as_record(), changes,
                                                   self.request_id))


def _changes(fields: KeyFields, names: set[str]) -> dict[str, Any]:
    return fields.model_dump(mode="json", include=names)


def _apply(doc: KeyDoc, fields: KeyFields, names: set[str]) -> KeyDoc:
    update: dict[str, Any] = {}
    for name in names:
        value = getattr(fields, name)
        if name == "expires_at":
            value = _ts(value)
        elif name == "limits":
            value = value.model_dump(exclude_none=True) if value is not None else None
            value = value or None
        update[name] = value
    doc = doc.model_copy(update=update)
    try:
        principal_of(doc)  # the limits compile as the `[[rate_limits]]` / `[[budgets]]` rules they become
    except ConfigError as exc:
        raise _bad(f"limits: {exc.expected}", "limits") from None
    return doc


Handler = Callable[["KeysApi"], Awaitable[web.Response]]


def _handler(write: bool) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.Response]]]:
    """The role check, a fresh view of the store, and the errors: around each endpoint."""
    def wrap(fn: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            who = require_admin_write(request) if write else require_admin_read(request)
            api = KeysApi(request, who)
            try:
                await api.fresh()
                return await fn(api)
            except ApiError as err:
                return err.response()
            except StoreError:
                # A refused connection changed nothing; a timed-out write may still land: say so.
                return ApiError(503, "api_error", "store_unavailable",
                                "the store is unavailable: the change is not confirmed; retry, or read the key "
                                "once the store answers").response()
        return handle
    return wrap


@_handler(write=False)
async def list_keys(api: KeysApi) -> web.Response:
    now = time.time()
    data = [view(d, now) for d in api.managed.docs()]
    store = api.rt.services.store
    for p in sorted(api.rt.keys.principals(), key=lambda p: p.key_id):
        try:
            revoked: bool | None = await store.is_revoked(p.key_id)
        except StoreError:
            revoked = None
        data.append(config_view(p, revoked, now))
    return _json({"object": "list", "store": store_info(api.rt), "you": {"id": api.who.id, "role": api.who.role},
                  "data": data})


@_handler(write=False)
async def show_key(api: KeysApi) -> web.Response:
    key_id = api.request.match_info["key_id"]
    doc = api.managed.get(key_id)
    if doc is not None:
        return _json(view(doc, time.time()))
    p = api.config_key(key_id)
    if p is None:
        raise _unknown(key_id)
    return _json(config_view(p, await api.rt.services.store.is_revoked(key_id), time.time()))


@_handler(write=True)
async def create_key(api: KeysApi) -> web.Response:
    body: KeyCreate = await _body(api.request, KeyCreate)
    _check_models(api.rt, body.models)
    key_id = body.id or "key-" + secrets.token_hex(6)
    if api.config_key(key_id) is not None:
        raise ApiError(409, "invalid_request_error", "key_exists", f"a [[keys]] rule has the id '{key_id}'", "id")
    secret = "sk-gw-" + secrets.token_urlsafe(32)
    now = time.time()
    names = set(body.model_fields_set) - {"id"}
    doc = _apply(KeyDoc(id=key_id, created_at=now, updated_at=now,
                        secrets=[SecretDigest(sha256=hashlib.sha256(secret.encode()).hexdigest(), created_at=now)]),
                 body, names)
    _check_usd_budget(api.rt, doc)
    await api.save(doc, create=True)
    api.audit("create", key_id, "api", _changes(body, names))
    return _json({"key": view(doc, now), "secret": secret, "store": store_info(api.rt),
                  "note": "the secret is shown once: the gateway keeps only its SHA-256"}, 201)


@_handler(write=True)
async def update_key(api: KeysApi) -> web.Response:
    doc = api.managed_doc(api.request.match_info["key_id"])
    body: KeyFields = await _body(api.request, KeyFields)
    _check_models(api.rt, body.models)
    names = set(body.model_fields_set)
    now = time.time()
    doc = _apply(doc, body, names).model_copy(update={"updated_at": now})
    _check_usd_budget(api.rt, doc)
    await api.save(doc)
    api.audit("update", doc.id, "api", _changes(body, names))
    return _json(view(doc, now))


async def _revocation(api: KeysApi, revoke: bool) -> web.Response:
    key_id = api.request.match_info["key_id"]
    store = api.rt.services.store
    doc = api.managed.get(key_id)
    if doc is None and api.config_key(key_id) is None:
        raise _unknown(key_id)
    # The store's revocation set is what every gateway's revocation check reads, for both kinds of key.
    await (store.revoke_key(key_id) if revoke else store.unrevoke_key(key_id))
    now = time.time()
    if doc is not None:
        doc = doc.model_copy(update={"revoked": revoke, "updated_at": now})
        await api.save(doc)
    api.rt.services.revocations.forget(key_id)
    api.audit("revoke" if revoke else "unrevoke", key_id, "api" if doc is not None else "config", {"revoked": revoke})
    out: dict[str, Any] = {"revoked" if revoke else "restored": key_id}
    if doc is not None:
        out["key"] = view(doc, now)
    return _json(out)


@_handler(write=True)
async def revoke_key(api: KeysApi) -> web.Response:
    return await _revocation(api, True)


@_handler(write=True)
async def unrevoke_key(api: KeysApi) -> web.Response:
    return await _revocation(api, False)


@_handler(write=True)
async def rotate_key(api: KeysApi) -> web.Response:
    doc = api.managed_doc(api.request.match_info["key_id"])
    body: Rotate = await _body(api.request, Rotate)
    now = time.time()
    until = now + body.grace_s
    kept = [s.model_copy(update={"not_after": until if s.not_after is None else min(s.not_after, until)})
            for s in doc.live_secrets(now)]
    secret = "sk-gw-" + secrets.token_urlsafe(32)
    kept.append(SecretDigest(sha256=hashlib.sha256(secret.encode()).hexdigest(), created_at=now))
    doc = doc.model_copy(update={"secrets": kept, "updated_at": now})
    await api.save(doc)
    api.audit("rotate", doc.id, "api", {"grace_s": body.grace_s, "previous_valid_until": _iso(until)})
    return _json({"key": view(doc, now), "secret": secret, "previous_valid_until": _iso(until), "grace_s": body.grace_s,
                  "note": "the new secret is shown once; the previous one is accepted until previous_valid_until"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/keys", list_keys)
    app.router.add_post("/admin/keys", create_key)
    app.router.add_get("/admin/keys/{key_id}", show_key)
    app.router.add_patch("/admin/keys/{key_id}", update_key)
    app.router.add_post("/admin/keys/{key_id}/revoke", revoke_key)
    app.router.add_post("/admin/keys/{key_id}/unrevoke", unrevoke_key)
    app.router.add_post("/admin/keys/{key_id}/rotate", rotate_key)

"""`gateway keys`: virtual keys, through a running gateway's admin API (`--url`) or for a policy file.

    gateway keys create [--id ID] [--team T] [--user U] [--models a,b] [--tags x,y] [--expires ISO]
                        [--rpm N] [--tpm N] [--rps N] [--tpd N] [--concurrency N]
                        [--budget-usd X] [--budget-window day|week|month] [--url URL]
    gateway keys list --url URL
    gateway keys show ID --url URL
    gateway keys update ID --url URL [the options of create; --clear team,limits,... to unset]
    gateway keys rotate ID --url URL [--grace SECONDS]
    gateway keys revoke ID [--url URL] [--config C]
    gateway keys unrevoke ID [--url URL] [--config C]

With `--url`, every command is one call to that gateway's `/admin/keys` API (the same endpoints the
dashboard's Keys page uses), authenticated with the admin key in the variable `--admin-key-env`
names (default: `[admin] key_env` of `--config`, else GATEWAY_ADMIN_KEY). Keys created so live in the
gateway's store (shared by every gateway on the same Redis; on the memory store, until that gateway
restarts). Without `--url`, `create` prints a `[[keys]]` table to paste into a policy file, and
`revoke` / `unrevoke` write the revocation into the store of `--config` (Redis only).

A key id that does not exist is an error (exit 1) with a message saying so: a typo must not look
like a revocation.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

LIMIT_OPTS = ("rps", "rpm", "tpm", "tpd", "concurrency")
CLEARABLE = ("team", "user", "models", "tags", "expires_at", "description", "limits")


def _create_toml(args: argparse.Namespace) -> int:
    secret = "sk-gw-" + secrets.token_urlsafe(32)
    key_id = args.id or "key-" + secrets.token_hex(4)
    lines = ["[[keys]]", f'id = "{key_id}"', f'key_sha256 = "{hashlib.sha256(secret.encode()).hexdigest()}"']
    if args.team:
        lines.append(f'team = "{args.team}"')
    if args.user:
        lines.append(f'user = "{args.user}"')
    if args.models:
        lines.append("models = [" + ", ".join(f'"{m.strip()}"' for m in args.models.split(",")) + "]")
    print(f"secret (shown once, give it to the caller): {secret}")
    print("\n# paste into a policy file, then reload the gateway (SIGHUP):")
    print("\n".join(lines))
    return 0


def key_ids(loaded) -> set[str]:
    return {str(r.data.get("id")) for r in loaded.rules.get("keys", [])}


async def _store_op(loaded, key_id: str, revoke: bool) -> int:
    from gateway.store import open_store

    url = loaded.main.store.url
    if url.startswith("memory://"):
        print("error: the memory store lives inside one gateway process; use --url to revoke through a running "
              "gateway's admin endpoint, or remove the key from the policy files and reload", file=sys.stderr)
        return 2
    store = open_store(url)
    try:
        await (store.revoke_key(key_id) if revoke else store.unrevoke_key(key_id))
    finally:
        await store.close()
    print(f"{'revoked' if revoke else 'restored'} {key_id} in {url.split('@')[-1]}")
    return 0


class ApiFailure(Exception):
    def __init__(self, status: int | None, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _call(url: str, method: str, path: str, admin_env: str, body: dict | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    admin = os.environ.get(admin_env)
    if admin:
        headers["Authorization"] = f"Bearer {admin}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            err = json.loads(raw)["error"]
            message = err.get("message") or raw.decode()
            if err.get("param") and err["param"] not in message:
                message += f" (field: {err['param']})"
            raise ApiFailure(exc.code, message, err.get("code")) from None
        except (ValueError, KeyError, TypeError):
            raise ApiFailure(exc.code, raw.decode(errors="replace")) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ApiFailure(None, f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None


def _fields(args: argparse.Namespace) -> dict:
    body: dict = {}
    for name in ("team", "user", "description"):
        if getattr(args, name, None) is not None:
            body[name] = getattr(args, name)
    if args.models is not None:
        body["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.tags is not None:
        body["tags"] = [t.strip() for t in args.tags.split(",") if t.strip()]
    if args.expires is not None:
        body["expires_at"] = args.expires
    limits = {k: getattr(args, k) for k in LIMIT_OPTS if getattr(args, k) is not None}
    if args.budget_usd is not None:
        limits["budget_usd"] = args.budget_usd
    if args.budget_window is not None:
        limits["budget_window"] = args.budget_window
    if limits:
        body["limits"] = limits
    for name in (args.clear.split(",") if getattr(args, "clear", None) else []):
        if name.strip() not in CLEARABLE:
            raise ApiFailure(None, f"--clear takes {', '.join(CLEARABLE)}, not '{name.strip()}'")
        body[name.strip()] = [] if name.strip() in ("models", "tags") else None
    return body


def _print_list(doc: dict) -> None:
    store = doc.get("store") or {}
    if store.get("note"):
        print(f"# store: {store.get('kind')}: {store['note']}")
    print(f"{'ID':<24} {'SOURCE':<7} {'TEAM':<14} {'STATE':<9} {'EXPIRES':<21} LIMITS")
    for k in doc.get("data", []):
        state = "revoked" if k.get("revoked") else "expired" if k.get("expired") else "active"
        limits = ",".join(f"{n}={v}" for n, v in (k.get("limits") or {}).items()) or "-"
        source = k["source"] + ("(ro)" if k.get("read_only") else "")
        print(f"{k['id']:<24} {source:<7} {(k.get('team') or '-'):<14} {state:<9} {(k.get('expires_at') or '-'):<21} "
              f"{limits}")


def _via_api(args: argparse.Namespace, admin_env: str) -> int:
    url, op = args.url, args.op
    quoted = urllib.parse.quote(getattr(args, "key_id", "") or "", safe="")
    if op == "list":
        _print_list(_call(url, "GET", "/admin/keys", admin_env))
        return 0
    if op == "show":
        out = _call(url, "GET", f"/admin/keys/{quoted}", admin_env)
    elif op == "create":
        body = _fields(args)
        if args.id:
            body["id"] = args.id
        out = _call(url, "POST", "/admin/keys", admin_env, body)
        print(f"secret (shown once, give it to the caller): {out['secret']}")
        note = (out.get("store") or {}).get("note")
        if note and not (out.get("store") or {}).get("persistent"):
            print(f"note: {note}")
        out = out["key"]
    elif op == "update":
        body = _fields(args)
        if body.get("limits"):  # the API replaces the limits object: keep the limits not named here
            current = _call(url, "GET", f"/admin/keys/{quoted}", admin_env).get("limits") or {}
            body["limits"] = {**{k: v for k, v in current.items() if v is not None}, **body["limits"]}
        out = _call(url, "PATCH", f"/admin/keys/{quoted}", admin_env, body)
    elif op == "rotate":
        out = _call(url, "POST", f"/admin/keys/{quoted}/rotate", admin_env, {"grace_s": args.grace})
        print(f"new secret (shown once): {out['secret']}")
        print(f"the previous secret is accepted until {out['previous_valid_until']}")
        out = out["key"]
    else:  # revoke, unrevoke
        out = _call(url, "POST", f"/admin/keys/{quoted}/{op}", admin_env)
    print(json.dumps(out, separators=(",", ":")))
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gateway keys")
    sub = ap.add_subparsers(dest="op", required=True)

    def common(p: argparse.ArgumentParser, url_required: bool) -> None:
        p.add_argument("--url", required=url_required, help="a running gateway: go through its admin API")
        p.add_argument("--config", help="the gateway's config (its [admin] key_env; without --url, its store)")
        p.add_argument("--admin-key-env", help="variable holding the admin key (default: [admin] key_env of "
                                               "--config, else GATEWAY_ADMIN_KEY)")

    def fields(p: argparse.ArgumentParser) -> None:
        p.add_argument("--team")
        p.add_argument("--user")
        p.add_argument("--description")
        p.add_argument("--models", help="comma-separated aliases the key may use")
        p.add_argument("--tags", help="comma-separated tags")
        p.add_argument("--expires", help="ISO-8601 time the key stops working, e.g. 2027-01-31T00:00:00Z")
        for name in LIMIT_OPTS:
            p.add_argument(f"--{name}", type=int)
        p.add_argument("--budget-usd", type=float)
        p.add_argument("--budget-window", choices=("day", "week", "month"))

    c = sub.add_parser("create")
    c.add_argument("--id")
    fields(c)
    common(c, False)
    common(sub.add_parser("list"), True)
    for name in ("show", "update", "rotate", "revoke", "unrevoke"):
        p = sub.add_parser(name)
        p.add_argument("key_id")
        common(p, name in ("show", "update", "rotate"))
        if name == "update":
            fields(p)
            p.add_argument("--clear", help=f"comma-separated fields to unset: {', '.join(CLEARABLE)}")
        if name == "rotate":
            p.add_argument("--grace", type=float, default=300.0,
                           help="seconds the previous secret stays valid (default 300)")
    return ap


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.op == "create" and not args.url:
        return _create_toml(args)
    loaded = None
    if args.config:
        from gateway.config.loader import load_config
        from gateway.config.validate import ConfigError

        try:
            loaded = load_config(args.config)
        except ConfigError as exc:
            print(f"config error: {exc.file}: {exc.key}: expected {exc.expected}", file=sys.stderr)
            return 1
    key_id = getattr(args, "key_id", None)
    in_config = loaded is not None and key_id in key_ids(loaded)
    if args.url:
        admin_env = args.admin_key_env or (loaded.main.admin.key_env if loaded is not None else None) \
            or "GATEWAY_ADMIN_KEY"
        try:
            return _via_api(args, admin_env)
        except ApiFailure as exc:
            if exc.code == "unknown_key" or (exc.status is None and loaded is not None and key_id and not in_config):
                where = f" in {args.config} and its policy files," if loaded is not None else ""
                print(f"error: no key with id '{key_id}'{where} nor among the keys managed at {args.url} "
                      f"(the key's id, not its secret){'' if exc.code else ': ' + exc.message}", file=sys.stderr)
            else:
                print(f"error: {exc.status or ''} {exc.message}".replace("  ", " "), file=sys.stderr)
            return 1
    if loaded is None:
        print("error: pass --url (a running gateway) or --config (its store)", file=sys.stderr)
        return 2
    if not in_config:
        print(f"error: no key with id '{key_id}' in {args.config} and its policy files "
              "(the id of a [[keys]] rule, not its secret; keys created over the admin API: pass --url)",
              file=sys.stderr)
        return 1
    return asyncio.run(_store_op(loaded, key_id, args.op == "revoke"))

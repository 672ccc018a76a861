"""`gateway keys`: create a virtual key, revoke or restore one.

    gateway keys create [--id ID] [--team TEAM] [--user USER] [--models a,b]
    gateway keys revoke ID --config C [--url http://gateway:8080]
    gateway keys unrevoke ID --config C [--url http://gateway:8080]

A revocation is recorded in the store, so every gateway sharing it refuses the key within a second.
With the memory store the state lives inside one gateway process: pass --url to go through that
gateway's admin endpoint (POST /admin/keys/ID/revoke or /unrevoke), or remove the key and reload
(SIGHUP). An ID that no `[[keys]]` rule declares is an error (exit 1): a typo must not look like a
revocation.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request


def _create(args: argparse.Namespace) -> int:
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


def _via_admin(url: str, key_id: str, op: str, admin_key_env: str | None) -> int:
    headers = {}
    admin = os.environ.get(admin_key_env or "GATEWAY_ADMIN_KEY")
    if admin:
        headers["Authorization"] = f"Bearer {admin}"
    path = f"/admin/keys/{urllib.parse.quote(key_id, safe='')}/{op}"
    req = urllib.request.Request(url.rstrip("/") + path, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            print(resp.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(f"error: {exc.code} {exc.read().decode()}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: cannot reach {url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="gateway keys")
    sub = ap.add_subparsers(dest="op", required=True)
    c = sub.add_parser("create")
    c.add_argument("--id")
    c.add_argument("--team")
    c.add_argument("--user")
    c.add_argument("--models", help="comma-separated aliases the key may use")
    for name in ("revoke", "unrevoke"):
        r = sub.add_parser(name)
        r.add_argument("key_id")
        r.add_argument("--config", required=True)
        r.add_argument("--url", help=f"{name} through this running gateway's admin endpoint")
    args = ap.parse_args(argv)
    if args.op == "create":
        return _create(args)
    from gateway.config.loader import load_config
    from gateway.config.validate import ConfigError

    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        print(f"config error: {exc.file}: {exc.key}: expected {exc.expected}", file=sys.stderr)
        return 1
    if args.key_id not in key_ids(loaded):
        print(f"error: no key with id '{args.key_id}' in {args.config} and its policy files "
              "(the id of a [[keys]] rule, not its secret)", file=sys.stderr)
        return 1
    if args.url:
        return _via_admin(args.url, args.key_id, args.op, loaded.main.admin.key_env)
    return asyncio.run(_store_op(loaded, args.key_id, args.op == "revoke"))

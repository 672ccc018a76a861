"""`gateway keys`: create a virtual key, revoke or restore one.

    gateway keys create [--id ID] [--team TEAM] [--user USER] [--models a,b]
    gateway keys revoke ID --config C [--url http://gateway:8080]
    gateway keys unrevoke ID --config C

A revocation is recorded in the store, so every gateway sharing it refuses the key within a second.
With the memory store the state lives inside one gateway process: pass --url to revoke through that
gateway's admin endpoint (POST /admin/keys/ID/revoke), or remove the key and reload (SIGHUP).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
import sys
import urllib.error
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


async def _store_op(config: str, key_id: str, revoke: bool) -> int:
    from gateway.config.loader import load_config
    from gateway.store import open_store

    loaded = load_config(config)
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


def _via_admin(url: str, key_id: str, admin_key_env: str | None) -> int:
    headers = {}
    admin = os.environ.get(admin_key_env or "GATEWAY_ADMIN_KEY")
    if admin:
        headers["Authorization"] = f"Bearer {admin}"
    req = urllib.request.Request(f"{url.rstrip('/')}/admin/keys/{key_id}/revoke", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            print(resp.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(f"error: {exc.code} {exc.read().decode()}", file=sys.stderr)
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
        if name == "revoke":
            r.add_argument("--url", help="revoke through this running gateway's admin endpoint")
    args = ap.parse_args(argv)
    if args.op == "create":
        return _create(args)
    if args.op == "revoke" and args.url:
        from gateway.config.loader import load_config

        return _via_admin(args.url, args.key_id, load_config(args.config).main.admin.key_env)
    return asyncio.run(_store_op(args.config, args.key_id, args.op == "revoke"))

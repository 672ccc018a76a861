"""What a config may hold depends on where the gateway listens: the demo key's secret is published in the
README, so it is a live credential only on loopback. Checked before serving (`gateway serve`'s preflight)
and again on every hot reload, which refuses a file that brings it in like any other bad file."""

from __future__ import annotations

import hashlib
import ipaddress
import os

from gateway.config.loader import LoadedConfig

# The README's demo key. Its secret is public, so it is a live credential only on loopback.
DEMO_KEY_SECRET = "sk-gateway-demo"


def is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def demo_key_ids(loaded: LoadedConfig) -> list[str]:
    """Ids of the `[[keys]]` whose secret is the published demo secret, however it is given: as `key`,
    as `key_sha256` (its digest) or through `key_env` (the variable's value)."""
    digest = hashlib.sha256(DEMO_KEY_SECRET.encode()).hexdigest()
    found = []
    for rule in loaded.rules.get("keys", []):
        raw = rule.data
        env = raw.get("key_env")
        if (raw.get("key") == DEMO_KEY_SECRET or str(raw.get("key_sha256", "")).lower() == digest
                or (isinstance(env, str) and os.environ.get(env) == DEMO_KEY_SECRET)):
            found.append(f"{raw.get('id')} ({os.path.basename(rule.file)})")
    return found


def demo_key_refusal(loaded: LoadedConfig, host: str) -> str | None:
    """Why this config must not serve on `host`, or None."""
    demo = demo_key_ids(loaded)
    if demo and not is_loopback(host) and not loaded.main.server.allow_demo_key:
        return (f"refusing to serve on {host} while key {', '.join(demo)} has the demo secret "
                f"'{DEMO_KEY_SECRET}', which is published in the README, so anyone could use it: remove that "
                "key (or give it a secret of its own: `gateway keys create`), serve on 127.0.0.1, or say "
                "[server] allow_demo_key = true")
    return None

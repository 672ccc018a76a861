"""The `gateway` command: serve, check-config, and the operator tools (scan, audit, keys)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gateway import __version__
from gateway.config.exposure import demo_key_refusal, is_loopback
from gateway.config.loader import LoadedConfig, load_config
from gateway.config.validate import ConfigError

log = logging.getLogger("gateway")

# Subcommands owned by other modules: `gateway NAME ...` runs `module.main(argv)`.
DELEGATED = {
    "scan": "gateway.guardrails.scan_cli",
    "audit": "gateway.records.audit_cli",
    "keys": "gateway.keys_cli",
}


def _setup_logging() -> None:
    from gateway.logs import setup_logging

    setup_logging()


def _load(path: str) -> LoadedConfig | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"config error: {exc.file}: {exc.key}: expected {exc.expected}", file=sys.stderr)
        return None


def preflight(loaded: LoadedConfig, host: str, workers: int) -> str | None:
    """Refusals that are about how the gateway is started, not about the file."""
    main = loaded.main
    demo = demo_key_refusal(loaded, host)  # checked again on every hot reload (gateway/http/server.py)
    if demo:
        return demo
    if workers > 1 and main.store.url.startswith("memory://"):
        return ("--workers > 1 needs a shared store: the memory store is per process, so each worker would "
                "enforce its own limits. Set [store] url = \"redis://...\" or run one worker.")
    if not is_loopback(host) and not main.admin.key_env and not main.admin.keys and not main.admin.public:
        return (f"refusing to serve admin endpoints (/stats, /metrics, /dashboard) without a key on {host}: set "
                "[admin] key_env to an environment variable holding an admin key, or say [admin] public = true")
    chain_key_env = (main.audit or {}).get("hmac_key_env")
    if chain_key_env and not os.environ.get(chain_key_env):  # else records would be sealed without it
        return f"[audit] hmac_key_env names {chain_key_env}, which is not set"
    envs = ([("[admin] key_env", main.admin.key_env)] if main.admin.key_env else []) + [
        (f"[[admin.keys]] '{k.id}' key_env", k.key_env) for k in main.admin.keys]
    for where, env in envs:
        key = os.environ.get(env)
        if not key:
            return f"{where} names {env}, which is not set"
        weak = _weak_admin_key(env, key, host)
        if weak:
            return weak
    return None


MIN_ADMIN_KEY_CHARS = 16


def _weak_admin_key(env: str, key: str, host: str) -> str | None:
    # Clients send the key in a header, whose surrounding whitespace HTTP strips: a key of only
    # whitespace (or with it at either end) could never be presented, or is a mistake (`echo` into a file).
    if not key.strip():
        return f"the admin key in {env} is only whitespace"
    if key != key.strip():
        return f"the admin key in {env} starts or ends with whitespace, which no client can send in a header"
    if not is_loopback(host) and len(key) < MIN_ADMIN_KEY_CHARS:
        return (f"the admin key in {env} is {len(key)} characters; serving on {host} needs at least "
                f"{MIN_ADMIN_KEY_CHARS} (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return None


def cmd_check_config(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if loaded is None:
        return 1
    from gateway.providers.key_scrub import MIN_KEY_CHARS
    from gateway.runtime import Services, compile_runtime

    try:
        rt = compile_runtime(loaded, Services())
    except ConfigError as exc:
        print(f"config error: {exc.file}: {exc.key}: expected {exc.expected}", file=sys.stderr)
        return 1
    m = loaded.main
    print(f"config: {loaded.path}")
    print(f"server: {m.server.host}:{m.server.port} workers={m.server.workers} max_in_flight={m.server.max_in_flight} "
          f"max_body_bytes={m.server.max_body_bytes}")
    print(f"store: {m.store.url.split('@')[-1]} on_store_error={m.store.on_store_error}")
    print(f"admin: key_env={m.admin.key_env or '-'} public={m.admin.public}")
    print("providers:")
    for name, p in rt.providers.items():
        env = p.options.api_key_env
        key = f"{env} ({'set' if env and os.environ.get(env) else 'unset'})" if env else "-"
        print(f"  {name}: type={p.options.type} base_url={p.base_url or '-'} api_key_env={key} "
              f"timeouts(connect={p.timeouts.connect:g}s first_byte={p.timeouts.first_byte:g}s idle={p.timeouts.idle:g}s)")
    for name, p in rt.providers.items():
        if p.key_unprotected:  # named, never shown: the value is a credential all the same
            print(f"warn: provider '{name}': the key in {p.options.api_key_env} is shorter than {MIN_KEY_CHARS} "
                  "characters, so it is unprotected: the gateway does not take it out of upstream answers")
    print("routes:")
    for alias, route in rt.router.routes.items():
        total = sum(route.weights)
        targets = ", ".join(f"{t.provider}/{t.model} ({w / total:.0%})" for t, w in zip(route.targets, route.weights))
        fb = f" fallbacks={','.join(route.fallbacks)}" if route.fallbacks else ""
        print(f"  {alias} -> {targets}{fb} max_attempts={route.max_attempts}")
    print(f"policy files: {', '.join(os.path.relpath(f, loaded.base_dir) for f in loaded.policy_files) or '-'}")
    for table, rules in loaded.rules.items():
        if rules:
            print(f"  {table}: {len(rules)}")
    if args.against:
        return _print_diff(rt, args.against, args.admin_key_env or m.admin.key_env)
    return 0


def _flatten(data: object, prefix: str = "") -> dict[str, str]:
    import orjson

    if isinstance(data, dict) and data:
        out: dict[str, str] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: orjson.dumps(data).decode()}


def config_diff(running: dict, local: dict) -> list[str]:
    """`+ path = value` only in the local file, `- path = value` only in the running gateway,
    `~ path: running -> local` where they differ. Generation and reload counters are not config."""
    skip = ("generation", "reload")
    a = {k: v for k, v in _flatten(running).items() if k.split(".")[0] not in skip}
    b = {k: v for k, v in _flatten(local).items() if k.split(".")[0] not in skip}
    lines = [f"- {k} = {a[k]}" for k in sorted(a.keys() - b.keys())]
    lines += [f"+ {k} = {b[k]}" for k in sorted(b.keys() - a.keys())]
    lines += [f"~ {k}: {a[k]} -> {b[k]}" for k in sorted(a.keys() & b.keys()) if a[k] != b[k]]
    return sorted(lines, key=lambda line: line[2:])


def _print_diff(rt, url: str, key_env: str | None) -> int:
    """Compare the local file with what a running gateway serves (`GET /admin/config`)."""
    import urllib.error
    import urllib.request

    import orjson

    from gateway.runtime import config_summary

    req = urllib.request.Request(url.rstrip("/") + "/admin/config")
    key = os.environ.get(key_env) if key_env else None
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            running = orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        hint = " (set the admin key's variable, or --admin-key-env)" if exc.code == 401 else ""
        print(f"error: {url}/admin/config answered {exc.code}{hint}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: could not read {url}/admin/config: {exc}", file=sys.stderr)
        return 1
    lines = config_diff(running, config_summary(rt))
    print(f"against {url} (generation {running.get('generation')}): "
          f"{len(lines) or 'no'} difference{'' if len(lines) == 1 else 's'} (- running, + this file)")
    for line in lines:
        print(f"  {line}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if loaded is None:
        return 1
    from gateway.logs import setup_logging

    setup_logging(loaded.main.logs.format)
    server = loaded.main.server
    host = args.host or server.host
    port = args.port if args.port is not None else server.port
    workers = args.workers or server.workers
    problem = preflight(loaded, host, workers)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from gateway.http.server import run_supervisor, run_worker

    if workers == 1:
        return run_worker(loaded.path, host, port, reuse_port=False)
    return run_supervisor(loaded.path, host, port, workers)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`gateway audit query ... | head -1`): stop quietly, as `cat` does. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13  # the shell's status for a process ended by SIGPIPE


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        import importlib

        return int(importlib.import_module(DELEGATED[argv[0]]).main(argv[1:]) or 0)
    parser = argparse.ArgumentParser(prog="gateway", description="Inline LLM gateway")
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the gateway")
    p.add_argument("--config", required=True)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int)
    p.add_argument("--log-format", choices=("auto", "json", "text"),
                   help="operational log on stderr: JSON lines, plain text, or auto (text on a terminal)")
    p = sub.add_parser("check-config", help="validate a config and print the effective routes")
    p.add_argument("--config", required=True)
    p.add_argument("--against", metavar="URL", help="also show what would change on the gateway running at URL")
    p.add_argument("--admin-key-env", help="variable holding that gateway's admin key (default: [admin] key_env)")
    for name in DELEGATED:
        sub.add_parser(name, help=f"see `gateway {name} --help`", add_help=False)
    args = parser.parse_args(argv)
    if getattr(args, "log_format", None):
        os.environ["GATEWAY_LOG_FORMAT"] = args.log_format  # the workers inherit it
    _setup_logging()
    if args.command == "serve":
        return cmd_serve(args)
    return cmd_check_config(args)



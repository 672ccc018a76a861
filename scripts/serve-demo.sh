#!/usr/bin/env bash
# Install the gateway into .venv, link a `gateway` command into ~/.local/bin, and serve
# config.example.toml (mock provider, memory store):
#   bash scripts/serve-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
# The runtime lock (versions and hashes), then the gateway without resolving anything.
.venv/bin/python -m pip install -q --require-hashes -r requirements/runtime.lock
.venv/bin/python -m pip install -q --no-deps --no-build-isolation .
bash scripts/install-launcher.sh
exec .venv/bin/gateway serve --config config.example.toml "$@"

#!/usr/bin/env bash
# Put a `gateway` command on the user's PATH: a link in ~/.local/bin (or $XDG_BIN_HOME) to this
# checkout's .venv/bin/gateway. serve-demo.sh runs it; say where the command is and how to reach it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${XDG_BIN_HOME:-$HOME/.local/bin}"
mkdir -p "$BIN"
ln -sf "$PWD/.venv/bin/gateway" "$BIN/gateway"
case ":$PATH:" in
  *":$BIN:"*) echo "gateway command: $BIN/gateway (try, in another terminal: gateway check-config --config config.example.toml)" ;;
  *) echo "gateway command: $BIN/gateway, which is not on your PATH: run  export PATH=\"$BIN:\$PATH\"  (or use $PWD/.venv/bin/gateway)" ;;
esac

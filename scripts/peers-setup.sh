#!/usr/bin/env bash
# Creates (or reuses) the virtualenv for the peers in tools/peers/ (Sentry, Datadog) and installs pinned packages.
# Usage: bash scripts/peers-setup.sh     (idempotent; fast when already set up)
# The last line printed is the path of the venv's python interpreter.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.peers-venv"
PY="$VENV/bin/python"
MARKER="$VENV/.peers-requirements"
REQS="sentry-sdk==2.75.0
sentry-relay==0.10.1
datadog-api-client==2.62.0
datadog==0.56.0"

if [ -x "$PY" ] && [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$REQS" ] && "$PY" -c '' >/dev/null 2>&1; then
  echo "$PY"
  exit 0
fi

# A fresh Debian/Ubuntu machine may lack python3 or its venv module: install them with apt.
ensure_venv_support() {
  local python="${PYTHON:-python3}"
  if command -v "$python" >/dev/null 2>&1 && "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    return
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "peers-setup: need $python with the venv module (and no apt-get to install it)" >&2
    exit 1
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "peers-setup: installing python3 and python3-venv with apt" >&2
  $sudo apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >&2
}

# The TLS tests make a test certificate authority with the openssl command.
if ! command -v openssl >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "peers-setup: installing openssl with apt" >&2
    $sudo apt-get update -qq >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >&2
  else
    echo "peers-setup: need the openssl command (and no apt-get to install it)" >&2
    exit 1
  fi
fi

if [ ! -x "$PY" ] || ! "$PY" -c '' >/dev/null 2>&1; then
  ensure_venv_support
  rm -rf "$VENV"
  "${PYTHON:-python3}" -m venv "$VENV" >&2
fi
rm -f "$MARKER"
# shellcheck disable=SC2086
"$PY" -m pip install --disable-pip-version-check --no-input --quiet --only-binary=:all: $REQS >&2
printf '%s' "$REQS" > "$MARKER"
echo "$PY"

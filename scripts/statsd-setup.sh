#!/usr/bin/env bash
# Installs (or reuses) Etsy statsd 0.9.0 from npm into .peers-npm/ for tools/peers/statsd_run.py.
# Usage: bash scripts/statsd-setup.sh     (idempotent; ~20 ms when already set up)
# Installs node and npm with apt when they are missing. The last line printed is the absolute path of statsd's
# stats.js (run it with `node`, or hand it to tools/peers/statsd_run.py).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX="$ROOT/.peers-npm"
STATS_JS="$PREFIX/node_modules/statsd/stats.js"
MARKER="$PREFIX/.peers-requirements"
REQS="statsd@0.9.0"

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$REQS" ] && [ -f "$STATS_JS" ] && command -v node >/dev/null 2>&1; then
  echo "$STATS_JS"
  exit 0
fi

# A fresh Debian/Ubuntu machine may lack node and/or npm: install what is missing with apt.
missing=""
command -v node >/dev/null 2>&1 || missing=" nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "statsd-setup: need node and npm (and no apt-get to install them)" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "statsd-setup: installing$missing with apt" >&2
  $sudo apt-get update -qq >&2
  # shellcheck disable=SC2086
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
fi

rm -f "$MARKER"
mkdir -p "$PREFIX"
# --prefix keeps node_modules/ inside .peers-npm/ whatever package.json files lie above it.
# statsd's optional modern-syslog dependency is only for the syslog backend: skip it and its native build.
npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --omit=optional --no-package-lock \
  --loglevel=error "$REQS" >&2
if [ ! -f "$STATS_JS" ]; then
  echo "statsd-setup: npm finished but $STATS_JS is missing" >&2
  exit 1
fi
printf '%s' "$REQS" > "$MARKER"
echo "$STATS_JS"

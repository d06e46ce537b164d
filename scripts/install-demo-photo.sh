#!/usr/bin/env bash
# Puts the demo clip's photo into a venv: the 1927 Solvay conference group (29 faces, public
# domain, 324 KB), from Debian's visp-images-data (heron.run.demo.clip reads it there).
#
#   scripts/install-demo-photo.sh [VENV]      (VENV defaults to .venv)
#
# The package is 75 MB to fetch and 225 MB installed, for one photo of it, so it is downloaded
# with `apt-get download` (no root needed) and only the photo is taken out of it; an installed
# visp-images-data is used as it is. Idempotent. Without apt (or its package lists), it says so
# and carries on: `heron demo` then falls back to a photo on which nothing is detected, and says
# that too.
set -euo pipefail

VENV="${1:-.venv}"
PACKAGE='visp-images-data'
PHOTO='Solvay_conference_1927_Version2_1280x881.jpg'
MEMBER="./usr/share/visp-images-data/ViSP-images/Solvay/$PHOTO"
# sha256 of the photo in visp-images-data 3.5.0-1 (Debian 12).
PHOTO_SHA256='f567adcdb388ca175521616acd83c004cf443815536b0ab170db68c565c42fce'
DEST="$VENV/share/heron/demo"

warn() { echo "install-demo-photo: warning: $*" >&2; }

[[ -d "$VENV" ]] || { echo "install-demo-photo: $VENV does not exist: create the venv first" >&2; exit 1; }

if [[ -f "$DEST/$PHOTO" || -f "/${MEMBER#./}" ]]; then
  echo "demo photo $PHOTO: already there"
  exit 0
fi
command -v apt-get >/dev/null || { warn "no apt-get: the demo clip falls back"; exit 0; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fetch() { (cd "$tmp" && apt-get download -qq "$PACKAGE" >/dev/null 2>&1); }
if ! fetch; then
  # A fresh machine may have no package lists yet; only root can fetch them.
  if [[ "$(id -u)" == 0 ]]; then
    apt-get update -qq && fetch || { warn "apt-get download $PACKAGE failed"; exit 0; }
  else
    warn "apt-get download $PACKAGE failed (run apt-get update as root first)"
    exit 0
  fi
fi
deb=("$tmp"/*.deb)
dpkg-deb --fsys-tarfile "${deb[0]}" | tar -x -C "$tmp" "$MEMBER"
got="$(sha256sum "$tmp/$MEMBER" | cut -d' ' -f1)"
if [[ "$got" != "$PHOTO_SHA256" ]]; then
  warn "$PHOTO from ${deb[0]##*/} has sha256 $got, expected $PHOTO_SHA256: not used"
  exit 0
fi
mkdir -p "$DEST"
cp "$tmp/$MEMBER" "$DEST/$PHOTO"
echo "demo photo: $DEST/$PHOTO (from ${deb[0]##*/})"

#!/usr/bin/env bash
# Installs what Heron's RTSP sink (heron.overlay.sinks.rtsp) needs: GStreamer with its RTSP
# server and x264/x265 encoders from Debian, and PyGObject into a venv.
#
#   scripts/install-gstreamer.sh [VENV]      (VENV defaults to .venv)
#
# Debian packages are installed only when missing and only as root; otherwise the script names
# them and carries on (the RTSP tests then skip with the same list). PyGObject stays below 3.51:
# 3.51+ needs GLib 2.80 and Debian 12 ships 2.74. It builds from source, hence the -dev packages.
set -euo pipefail

VENV="${1:-.venv}"
APT_PACKAGES=(
  gir1.2-gst-rtsp-server-1.0   # GstRtspServer typelib (pulls gir1.2-gstreamer-1.0)
  gir1.2-gst-plugins-base-1.0  # GstApp, GstVideo typelibs
  gstreamer1.0-plugins-base    # appsrc, videoconvert
  gstreamer1.0-plugins-good    # rtph264pay, rtph265pay
  gstreamer1.0-plugins-ugly    # x264enc
  gstreamer1.0-plugins-bad     # x265enc (codec=2)
  gstreamer1.0-libav
  gstreamer1.0-rtsp            # libgstrtspserver
  libcairo2-dev                # PyGObject/pycairo build
  libgirepository1.0-dev       # PyGObject build
  pkg-config
)
PIP_PACKAGE='PyGObject<3.51'

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ "$(id -u)" == 0 ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "warning: missing Debian packages: ${missing[*]} (run as root to install them;" \
      "RTSP tests skip without them)" >&2
    exit 0
  fi
fi

if ! "$VENV/bin/python" -c 'import gi' 2>/dev/null; then
  "$VENV/bin/pip" install -q "$PIP_PACKAGE"
fi
"$VENV/bin/python" - <<'PY'
import gi
for name in ("Gst", "GstApp", "GstVideo", "GstRtspServer"):
    gi.require_version(name, "1.0")
from gi.repository import Gst, GstRtspServer  # noqa: F401
Gst.init(None)
missing = [e for e in ("appsrc", "x264enc", "rtph264pay") if Gst.ElementFactory.find(e) is None]
if missing:
    raise SystemExit(f"GStreamer elements missing after install: {', '.join(missing)}")
print(f"{Gst.version_string()} with the RTSP server: ready")
PY

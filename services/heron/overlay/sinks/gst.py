"""GStreamer and PyGObject, loaded on first use with an error that says what to install.

Nothing here imports `gi` at module import time: the `heron` CLI and services that never serve
RTSP must start without GStreamer installed. PyGObject ships no type stubs, so the modules are
handed out as `Any`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

# What scripts/install-gstreamer.sh installs; named in the error so the fix is one copy-paste.
APT_PACKAGES = (
    "gir1.2-gst-rtsp-server-1.0",
    "gir1.2-gst-plugins-base-1.0",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-ugly",
    "gstreamer1.0-libav",
    "gstreamer1.0-rtsp",
    "libcairo2-dev",
    "libgirepository1.0-dev",
    "pkg-config",
)
PIP_PACKAGE = "PyGObject<3.51"
# GObject-introspection namespaces the RTSP server needs, with their versions.
NAMESPACES = {"Gst": "1.0", "GstApp": "1.0", "GstVideo": "1.0", "GstRtspServer": "1.0"}


class GStreamerMissingError(RuntimeError):
    """GStreamer, one of its plugins or PyGObject is not installed."""


def install_hint() -> str:
    return (
        f"install the Debian packages ({' '.join(APT_PACKAGES)}) and "
        f"`pip install '{PIP_PACKAGE}'` into this venv, or run scripts/install-gstreamer.sh"
    )


@dataclass(frozen=True)
class GstModules:
    """The introspected modules, after `Gst.init`."""

    Gst: Any
    GstApp: Any
    GstVideo: Any
    GstRtspServer: Any
    GLib: Any
    Gio: Any


@functools.cache
def load_gstreamer() -> GstModules:
    """Import PyGObject's GStreamer bindings once and initialise GStreamer."""
    try:
        import gi  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as e:
        raise GStreamerMissingError(
            f"PyGObject (module gi) is not installed: {install_hint()}"
        ) from e
    for name, version in NAMESPACES.items():
        try:
            gi.require_version(name, version)
        except ValueError as e:
            raise GStreamerMissingError(
                f"GObject introspection data for {name}-{version} is missing ({e}): "
                f"{install_hint()}"
            ) from e
    from gi.repository import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        Gio,
        GLib,
        Gst,
        GstApp,
        GstRtspServer,
        GstVideo,
    )

    Gst.init(None)
    return GstModules(
        Gst=Gst, GstApp=GstApp, GstVideo=GstVideo, GstRtspServer=GstRtspServer, GLib=GLib, Gio=Gio
    )


def has_element(factory: str) -> bool:
    """Whether a GStreamer element (e.g. `x265enc`) is installed."""
    return load_gstreamer().Gst.ElementFactory.find(factory) is not None


def require_elements(*factories: str) -> None:
    """Raise naming every missing element and the packages that provide the usual ones."""
    missing = [f for f in factories if not has_element(f)]
    if missing:
        raise GStreamerMissingError(
            f"GStreamer element(s) {', '.join(missing)} not found "
            f"(x264enc: gstreamer1.0-plugins-ugly; x265enc: gstreamer1.0-plugins-bad; "
            f"rtph264pay/rtph265pay/queue: gstreamer1.0-plugins-good/base): {install_hint()}"
        )

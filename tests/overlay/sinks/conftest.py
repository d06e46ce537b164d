"""Fixtures for the RTSP sink tests: skip cleanly without GStreamer, PyGObject or PyAV."""

from __future__ import annotations

import pytest

from tests.support.redis_server import free_port
from tests.support.rtsp_source import require_gstreamer


@pytest.fixture(scope="session")
def gstreamer() -> None:
    """GStreamer with the RTSP server and x264; skips with the install hint otherwise."""
    require_gstreamer()
    pytest.importorskip("av", reason="PyAV (the RTSP client in these tests) is not installed")


@pytest.fixture
def rtsp_port(gstreamer: None) -> int:
    """A free loopback port (never 8554, which a running demo may hold)."""
    return free_port()

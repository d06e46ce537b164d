"""Missing GStreamer pieces give an error that says what to install."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from heron.overlay.sinks import gst
from heron.overlay.sinks.gst import GStreamerMissingError, load_gstreamer, require_elements


@pytest.fixture
def fresh_loader() -> Iterator[None]:
    load_gstreamer.cache_clear()
    yield
    load_gstreamer.cache_clear()


def test_without_pygobject_the_error_names_the_packages(
    monkeypatch: pytest.MonkeyPatch, fresh_loader: None
) -> None:
    monkeypatch.setitem(sys.modules, "gi", None)  # import gi now raises ImportError
    with pytest.raises(GStreamerMissingError) as raised:
        load_gstreamer()
    message = str(raised.value)
    for package in ("PyGObject<3.51", "gir1.2-gst-rtsp-server-1.0", "gstreamer1.0-plugins-ugly"):
        assert package in message
    assert "scripts/install-gstreamer.sh" in message


def test_without_the_rtsp_server_typelib_the_error_names_it(
    monkeypatch: pytest.MonkeyPatch, fresh_loader: None
) -> None:
    pytest.importorskip("gi", reason="PyGObject is not installed", exc_type=ImportError)
    monkeypatch.setitem(gst.NAMESPACES, "GstRtspServerNoSuch", "1.0")
    with pytest.raises(GStreamerMissingError, match=r"GstRtspServerNoSuch-1\.0 is missing"):
        load_gstreamer()


def test_a_missing_element_is_named(gstreamer: None) -> None:
    with pytest.raises(GStreamerMissingError, match="nosuchenc not found"):
        require_elements("x264enc", "nosuchenc")

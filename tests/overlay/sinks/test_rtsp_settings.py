"""RtspSettings: its checks, and the mapping from deepstream-app's [sinkN] type=4 group."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from heron.core.config.deepstream import read_deepstream_app
from heron.core.config.sinks import RtspSink
from heron.overlay.sinks.rtsp import launch_description
from heron.overlay.sinks.rtsp_settings import H264Profile, RtspCodec, RtspSettings
from pydantic import ValidationError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "deepstream"


def sink(**keys: Any) -> RtspSink:
    return RtspSink.model_validate({"type": 4, "enable": True, **keys})


def test_the_facemask_apps_rtsp_sink_maps_to_settings(caplog: pytest.LogCaptureFixture) -> None:
    pipeline, _ = read_deepstream_app(FIXTURES / "facemask_app.txt")
    rtsp = pipeline.sinks[1]
    assert isinstance(rtsp, RtspSink)
    tiles = pipeline.tiled_display
    with caplog.at_level(logging.WARNING):
        settings = RtspSettings.from_sink(rtsp, width=tiles.width, height=tiles.height, fps=30)
    assert settings.url == "rtsp://127.0.0.1:8554/ds-test"
    assert (settings.width, settings.height, settings.bitrate_kbps) == (1280, 480, 4000)
    assert (settings.codec, settings.profile) == (RtspCodec.H264, H264Profile.BASELINE)
    assert "enc-type=0" in caplog.text and "x264enc" in caplog.text  # NVENC asked, CPU used


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"rtsp_port": 9554}, {"port": 9554}),
        ({"bitrate": 2_500_000}, {"bitrate_kbps": 2500}),
        ({"bitrate": 10_000}, {"bitrate_kbps": 50}),  # x264 floor
        ({"codec": 2}, {"codec": RtspCodec.H265}),
        ({"codec": "h265", "profile": 1}, {"codec": RtspCodec.H265}),  # H.265 Main10 code
        ({"profile": 2}, {"profile": H264Profile.MAIN}),
        ({"profile": 4}, {"profile": H264Profile.HIGH}),
        ({"iframeinterval": 60}, {"key_int_max": 60}),
        ({"enc_type": 1, "udp_port": 5400}, {"port": 8554}),
    ],
)
def test_sink_keys_map_to_settings(keys: dict[str, Any], expected: dict[str, Any]) -> None:
    settings = RtspSettings.from_sink(sink(**keys), width=640, height=480, fps=25)
    assert {k: getattr(settings, k) for k in expected} == expected


def test_a_software_encoder_needs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        RtspSettings.from_sink(sink(enc_type=1), width=640, height=480, fps=25)
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"codec": 3}, "expected 1 (h264) or 2 (h265) for an RTSP sink, got 3 (mpeg4)"),
        ({"profile": 1}, "expected 0 (baseline), 2 (main) or 4 (high) for H.264, got 1"),
    ],
)
def test_sink_values_an_rtsp_server_cannot_honour(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RtspSettings.from_sink(sink(**keys), width=640, height=480, fps=25)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("width", 641, "multiple of 2"),
        ("height", 8, "greater than or equal to 16"),
        ("fps", 0, "greater than 0"),
        ("port", 70000, "less than or equal to 65535"),
        ("mount", "ds-test", "should match pattern"),
        ("mount", "/a b", "should match pattern"),
        (
            "address",
            "localhost",
            "expected an IP address such as 127.0.0.1 or 0.0.0.0, got 'localhost'",
        ),
        ("bitrate_kbps", 0, "greater than or equal to 50"),
        ("codec", "vp8", "'h264' or 'h265'"),
        ("colour", "red", "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_name_the_field(field: str, value: object, message: str) -> None:
    values: dict[str, object] = {"width": 640, "height": 480, field: value}
    with pytest.raises(ValidationError) as raised:
        RtspSettings.model_validate(values)
    error = raised.value.errors()[0]
    assert error["loc"] == (field,)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("127.0.0.1", "rtsp://127.0.0.1:8554/ds-test"),
        ("0.0.0.0", "rtsp://127.0.0.1:8554/ds-test"),
        ("::1", "rtsp://[::1]:8554/ds-test"),
    ],
)
def test_url(address: str, url: str) -> None:
    assert RtspSettings(width=640, height=480, address=address).url == url


@pytest.mark.parametrize(
    ("settings", "parts"),
    [
        (
            RtspSettings(width=960, height=544, fps=29.97, bitrate_kbps=3000, key_int_max=15),
            [
                "width=960,height=544,framerate=2997/100",
                "x264enc name=enc",
                "bitrate=3000",
                "key-int-max=15",
                "video/x-h264,profile=baseline",
                "rtph264pay name=pay0",
                "threads=1 sliced-threads=false",
                "leaky=downstream",
            ],
        ),
        (
            RtspSettings(width=640, height=480, codec=RtspCodec.H265),
            ["x265enc name=enc", "video/x-h265", "rtph265pay name=pay0"],
        ),
    ],
)
def test_launch_description(settings: RtspSettings, parts: list[str]) -> None:
    launch = launch_description(settings)
    missing = [p for p in parts if p not in launch]
    assert not missing, launch

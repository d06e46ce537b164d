"""Ingest settings: defaults, environment, and the bounds that keep every_frame lossless."""

from __future__ import annotations

from typing import Any

import pytest
from heron.core.plan.settings.ingest import Backpressure, FrameLocation, IngestSettings
from heron.core.runtime import SettingsError, load_settings


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_RECONNECT__READ_TIMEOUT_S", "3.5")
    monkeypatch.setenv("HERON_FRAME_LOCATION", "jpeg")
    settings = load_settings(IngestSettings)
    assert settings.service_name == "ingest"
    assert settings.frame_location is FrameLocation.JPEG
    assert settings.backpressure is Backpressure.LATEST_FRAME_WINS
    assert settings.reconnect.read_timeout_s == 3.5
    assert settings.bus_settings().retention.drop_oldest_max_len == settings.frame_stream_max_len


@pytest.mark.parametrize(
    ("init", "message"),
    [
        (
            {"backpressure": "every_frame", "max_lag": 8, "frame_stream_max_len": 8},
            "every_frame needs frame_stream_max_len > max_lag (8), got 8",
        ),
        (
            {"backpressure": "every_frame", "max_lag": 8, "shm_slots": 4},
            "every_frame with shm needs shm_slots > max_lag (8), got 4",
        ),
        (
            {
                "backpressure": "every_frame",
                "shm_slots": 32,
                "frame_stream_max_len": 32,
                "downstream": {"stage": "tracker", "max_lag": 32},
            },
            "every_frame with shm needs shm_slots > downstream.max_lag (32), got 32",
        ),
        (
            {"downstream": {"stage": "tracker", "max_lag": 8}},
            "downstream: only every_frame waits for downstream readers",
        ),
        ({"backpressure": "every_frame", "downstream": {"max_lag": 8}}, "downstream.stage"),
        (
            {"backpressure": "every_frame", "downstream": {"stage": "t", "max_lag": 0}},
            "downstream.max_lag",
        ),
        ({"reconnect": {"initial_s": 2, "max_s": 1}}, "reconnect.max_s must be >= reconnect"),
        ({"backpressure": "sometimes"}, "backpressure"),
        ({"frame_location": "cuda"}, "frame_location"),
        ({"jpeg_quality": 0}, "jpeg_quality"),
        ({"reconnect": {"read_timeout": 1}}, "reconnect.read_timeout"),
    ],
)
def test_bad_settings_name_the_field(init: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(IngestSettings, **init)
    assert message in str(caught.value)


def test_every_frame_with_jpeg_needs_no_ring_bound() -> None:
    settings = load_settings(
        IngestSettings,
        backpressure="every_frame",
        frame_location="jpeg",
        max_lag=8,
        shm_slots=2,
        frame_stream_max_len=9,
    )
    assert settings.max_lag == 8

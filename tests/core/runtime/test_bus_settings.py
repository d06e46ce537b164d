"""BusClientSettings / BusConsumerSettings: the bus fields every service shares, declared once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from heron.core import streams
from heron.core.bus import ConsumerSettings, MemoryBus, MemoryTransport, RedisBus
from heron.core.plan.settings.inference import InferenceSettings
from heron.core.plan.settings.ingest import IngestSettings
from heron.core.plan.settings.overlay import OverlaySettings
from heron.core.plan.settings.streammux import StreammuxSettings
from heron.core.plan.settings.tracker import TrackerSettings
from heron.core.runtime import BusClientSettings, BusConsumerSettings, SettingsError, load_settings
from prometheus_client import CollectorRegistry


class StageSettings(BusConsumerSettings):
    service_name: str = "stage"
    group: str = "stage"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().startswith("HERON_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_the_bus_is_built_from_the_shared_fields() -> None:
    s = StageSettings(
        redis_url="redis://cache:6380/2",
        consumer=ConsumerSettings(min_idle_ms=1000, block_ms=50),
        backoff={"give_up_after_s": 5},
        retention={"keep_unread_max_len": 10},
    )
    built = s.bus_settings()
    assert built.url.get_secret_value() == "redis://cache:6380/2"
    assert (built.consumer.min_idle_ms, built.consumer.block_ms) == (1000, 50)
    assert built.backoff.give_up_after_s == 5
    assert built.retention.keep_unread_max_len == 10
    bus = s.bus(CollectorRegistry())  # Redis by default; connects on first use, not here
    assert isinstance(bus, RedisBus)
    assert bus.settings == built
    bus.close()
    in_memory = s.bus(CollectorRegistry(), MemoryTransport())
    assert isinstance(in_memory, MemoryBus)
    assert in_memory.settings == built


def test_defaults_are_the_buss_own() -> None:
    s = StageSettings()
    assert s.pipeline == streams.DEFAULT_PIPELINE == "default"
    assert (s.group, s.consumer_name, s.member, s.read_block_ms) == ("stage", "", None, 200)
    assert StageSettings(consumer_name="stage-0").member == "stage-0"
    assert s.bus_settings().model_dump(exclude={"url"}) == (
        type(s.bus_settings())().model_dump(exclude={"url"})
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HERON_PIPELINE": "a:b"}, ["pipeline (from environment variable", "not a valid stream"]),
        ({"HERON_GROUP": ""}, ["group (from environment variable HERON_GROUP)", "non-empty"]),
        ({"HERON_GROUP": "two words"}, ["group", "without spaces"]),
        ({"HERON_CONSUMER_NAME": "a b"}, ["consumer_name", "without spaces"]),
        ({"HERON_READ_BLOCK_MS": "-1"}, ["read_block_ms", "greater than or equal to 0"]),
        ({"HERON_CONSUMER__BLOCK_MS": "20000"}, ["must exceed consumer.block_ms (20000 ms)"]),
        ({"HERON_BACKOFF__MAX_S": "0.01"}, ["backoff.max_s must be >= backoff.initial_s"]),
        ({"HERON_RETENTION__KEEP_UNREAD_MAX_LEN": "0"}, ["retention.keep_unread_max_len"]),
    ],
)
def test_bad_bus_settings_name_the_field_and_source(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], expected: list[str]
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(StageSettings, [])
    for text in expected:
        assert text in str(raised.value)


@pytest.mark.parametrize(
    ("cls", "group", "block_ms"),
    [
        (InferenceSettings, "inference", 200),
        (TrackerSettings, "tracker", 200),
        (OverlaySettings, "overlay", 200),
        (StreammuxSettings, "streammux", 100),  # a reader thread per source: its own bound
    ],
)
def test_every_consuming_service_uses_the_mixin(
    cls: type[BusConsumerSettings], group: str, block_ms: int
) -> None:
    assert issubclass(cls, BusConsumerSettings)
    assert cls.model_fields["group"].default == group
    assert cls.model_fields["read_block_ms"].default == block_ms
    redeclared = set(vars(cls).get("__annotations__", {}))
    assert not redeclared & {"pipeline", "consumer_name", "consumer", "retention", "backoff"}


def test_ingests_own_bounds_win_over_the_shared_ones(tmp_path: Path) -> None:
    s = IngestSettings(
        frame_stream_max_len=7,
        redis_give_up_after_s=3,
        retention={"drop_oldest_max_len": 99, "approximate_trim": True},
        backoff={"max_s": 2},
    )
    assert isinstance(s, BusClientSettings)
    built = s.bus_settings()
    assert built.retention.drop_oldest_max_len == 7
    assert built.retention.approximate_trim
    assert (built.backoff.give_up_after_s, built.backoff.max_s) == (3, 2)


@pytest.mark.parametrize(
    ("fields", "kept"),
    [
        ({"ring_batches": 32}, 32),  # no more batch refs than the ring holds batches
        ({}, 4),  # unset: [streammux] buffer-pool-size (DeepStream's default, 4)
        ({"ring_batches": 32, "retention": {"drop_oldest_max_len": 10}}, 10),  # a smaller bound
        ({"ring_batches": 32, "output_location": "jpeg"}, 1000),  # pixels inline: no ring
    ],
)
def test_the_muxers_batch_stream_keeps_what_its_ring_holds(
    fields: dict[str, object], kept: int
) -> None:
    built = StreammuxSettings.model_validate(fields).bus_settings()
    assert built.retention.drop_oldest_max_len == kept

"""`python -m heron.overlay` end to end with a real redis-server: frames in the frame store and
FrameMetadata on the bus in; a tiled, annotated MP4 and broker messages out; SIGTERM leaves a
playable file; overwritten frames are counted and skipped."""

from __future__ import annotations

import json
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import av
import numpy as np
import pytest
import redis
import yaml
from google.protobuf.timestamp_pb2 import Timestamp
from heron.core import streams
from heron.core.bus import BusSettings, RedisBus
from heron.core.config.pipeline_file import load_pipeline
from heron.core.framestore import FrameStore, Letterbox, SharedMemoryRing, segment_name
from heron.core.plan.settings.overlay import OverlaySettings
from heron.core.runtime import EXIT_BAD_SETTINGS, EXIT_OK, SettingsError, load_settings
from heron.v1.bus_pb2 import DeadLetter
from heron.v1.detection_pb2 import BoundingBox, DetectedObject, FrameMetadata
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import StreamEvent
from prometheus_client import CollectorRegistry

from tests.core.runtime.service_process import ServiceProcess
from tests.overlay.app_config import write_app

COMMAND = [sys.executable, "-m", "heron.overlay"]
PIPELINE = "ovl-e2e"
FRAMES = 6  # per source
GREEN, RED = (0, 255, 0), (0, 0, 255)


def app(tmp_path: Path, redis_url: str) -> Path:
    url = urlparse(redis_url)
    return write_app(tmp_path, f"""
[tiled-display]
enable=1
rows=1
columns=2
width=640
height=240

[sink0]
enable=1
type=3
container=1
codec=1
enc-type=1
output-file={tmp_path}/out.mp4

[sink1]
enable=1
type=6
msg-broker-proto-lib=/opt/nvidia/deepstream/deepstream/lib/libnvds_redis_proto.so
msg-broker-conn-str={url.hostname};{url.port}
topic=heron-objects
msg-conv-frame-interval=1
""")  # fmt: skip


def publish(
    redis_url: str, ring: SharedMemoryRing, *, overwrite_first: int = 0, nan_at: int = -1
) -> None:
    """Two 640x480 sources, stored muxer-sized (320x240) as streammux does; a Mask box at
    source (200, 120, 400, 360) on source 0 and a No-Mask box on source 1 (a box of NaN width
    on source 0 frame `nan_at`)."""
    store = FrameStore(ring)
    messages = []
    muxed = Letterbox.fit(640, 480, 320, 240, padding=False)  # the ref says so, as in a batch
    for n in range(FRAMES):
        for source, stream in enumerate(("cam-a", "cam-b")):
            pixels = np.full((240, 320, 3), 60 + 40 * source, np.uint8)
            ref = store.store(pixels, FrameRef(stream_id=stream, source_id=source,
                              frame_number=n, pts=n * 3000, time_base_num=1,
                              time_base_den=90000), placement=muxed)  # fmt: skip
            ref.capture_time.GetCurrentTime()
            width = float("nan") if (n, source) == (nan_at, 0) else 200
            box = BoundingBox(left=200, top=120, width=width, height=240)
            obj = DetectedObject(bbox=box, class_id=source, label=["Mask", "No-Mask"][source],
                                 confidence=0.9)  # fmt: skip
            messages.append(FrameMetadata(frame=ref, objects=[obj], model_name="m"))
    for _ in range(overwrite_first):  # lap the ring: the first frames' pixels are gone
        store.store(np.zeros((240, 320, 3), np.uint8), FrameRef(stream_id="other"))
    with RedisBus(BusSettings(url=redis_url), registry=CollectorRegistry()) as bus:
        bus.publisher(streams.metadata("inference", PIPELINE), FrameMetadata).publish_many(messages)


def settings(tmp_path: Path, config: Path, redis_url: str) -> Path:
    path = tmp_path / "overlay.yaml"
    data = {"pipeline_config": str(config), "pipeline": PIPELINE, "redis_url": redis_url,
            "read_block_ms": 50, "fps": 30}  # fmt: skip
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def metric(service: ServiceProcess, name: str, *labels: str) -> float:
    """The sum over every series of `name` whose labels include all of `labels`."""
    _, text = service.get("/metrics")
    found = re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE)
    return sum(float(v) for series, v in found if all(x in series for x in labels))


@pytest.fixture
def ring() -> Iterator[SharedMemoryRing]:
    ring = SharedMemoryRing.create(segment_name("ovl"), slots=2 * FRAMES, slot_bytes=320 * 240 * 3)
    yield ring
    ring.unlink()
    ring.close()


def run_overlay(tmp_path: Path, redis_url: str, expect: float) -> ServiceProcess:
    config = app(tmp_path, redis_url)
    service = ServiceProcess([*COMMAND, "--config", str(settings(tmp_path, config, redis_url))], {})
    service.wait_running()
    service.wait_for(
        lambda: metric(service, "heron_overlay_sink_frames_total", 'sink="sink1"') >= expect,
        "the sinks to take every composite",
    )
    return service


def test_frames_and_metadata_in_annotated_mp4_out(
    tmp_path: Path, redis_url: str, ring: SharedMemoryRing
) -> None:
    publish(redis_url, ring)
    service = run_overlay(tmp_path, redis_url, FRAMES)
    assert metric(service, "heron_overlay_sink_frames_total", 'sink="sink0"') == FRAMES
    assert metric(service, "heron_overlay_broker_messages_total", 'sink="sink1"') == 2 * FRAMES
    # Each frame's capture to every sink having taken it, per stream.
    for stream in ("cam-a", "cam-b"):
        taken = metric(service, "heron_overlay_capture_to_sink_seconds_count", f'stream="{stream}"')
        assert taken == FRAMES
    assert 0 < metric(service, "heron_overlay_capture_to_sink_seconds_sum") < 2 * FRAMES * 60
    service.signal(signal.SIGTERM)
    assert service.wait() == EXIT_OK
    with av.open(str(tmp_path / "out.mp4")) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == FRAMES  # one composite per pair of source frames
    last = frames[-1].astype(int)
    # source box (200,120)-(400,360) at 640x480 -> muxer 320x240: (100,60)-(200,180) -> tile
    # 320x240 holds it 1:1; tile 1 starts at x=320. Border 3 px, drawn inside the box.
    for x0, colour in ((0, GREEN), (320, RED)):
        for y, x in ((61, x0 + 150), (178, x0 + 150), (120, x0 + 101), (120, x0 + 198)):
            assert np.abs(last[y, x] - colour).max() < 60, (x0, y, x, last[y, x])
        inside = last[120, x0 + 150]
        assert np.abs(inside - (60 + 40 * (x0 // 320))).max() < 15
    entries: Any = redis.Redis.from_url(redis_url).xrange("heron-objects")
    assert len(entries) == 2 * FRAMES
    labels = {json.loads(f[b"metadata"])["object"]["label"] for _, f in entries}
    assert labels == {"Mask", "No-Mask"}
    group = redis.Redis.from_url(redis_url).xpending(
        streams.metadata("inference", PIPELINE).key, "overlay"
    )
    assert group["pending"] == 0  # every message acknowledged


def test_overwritten_frames_are_counted_and_skipped(
    tmp_path: Path, redis_url: str, ring: SharedMemoryRing
) -> None:
    publish(redis_url, ring, overwrite_first=2)  # cam-a and cam-b frame 0 are gone
    service = run_overlay(tmp_path, redis_url, FRAMES)
    assert metric(service, "heron_overlay_frames_total", 'result="overwritten"') == 2
    assert (
        metric(service, "heron_overlay_frames_total", 'stream="cam-a"', 'result="overwritten"') == 1
    )
    assert metric(service, "heron_overlay_frames_total", 'result="drawn"') == 2 * FRAMES - 2
    service.signal(signal.SIGTERM)
    assert service.wait() == EXIT_OK
    assert any("overwritten" in r["message"] for r in service.records())
    # Both frames left the last stage: only this event tells the run they are not in the file.
    events: Any = redis.Redis.from_url(redis_url).xrange(streams.events(PIPELINE).key)
    dropped = [StreamEvent.FromString(f[b"pb"]) for _, f in events]
    assert sorted((e.stream_id, e.dropped.frame_number, e.dropped.reason) for e in dropped) == [
        ("cam-a", 0, "overwritten"),
        ("cam-b", 0, "overwritten"),
    ]
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == FRAMES - 1


def test_metadata_whose_boxes_cannot_be_drawn_is_dead_lettered(
    tmp_path: Path, redis_url: str, ring: SharedMemoryRing
) -> None:
    publish(redis_url, ring, nan_at=3)
    service = run_overlay(tmp_path, redis_url, FRAMES)
    assert metric(service, "heron_overlay_frames_total", 'result="dead_lettered"') == 1
    assert metric(service, "heron_overlay_frames_total", 'result="drawn"') == 2 * FRAMES - 1
    service.signal(signal.SIGTERM)
    assert service.wait() == EXIT_OK
    dead = streams.dead_letter(streams.metadata("inference", PIPELINE)).key
    entries: Any = redis.Redis.from_url(redis_url).xrange(dead)
    (entry,) = entries
    letter = DeadLetter.FromString(entry[1][b"pb"])
    assert letter.reason.startswith("bad_metadata: stream 'cam-a' frame 3: ")
    assert FrameMetadata.FromString(letter.payload).frame.frame_number == 3


def test_a_bad_pipeline_config_is_a_settings_error(tmp_path: Path, redis_url: str) -> None:
    config = write_app(tmp_path, "[sink0]\nenable=1\ntype=9\n")
    service = ServiceProcess([*COMMAND, "--config", str(settings(tmp_path, config, redis_url))], {})
    assert service.wait() == EXIT_BAD_SETTINGS
    assert "pipeline_config" in "".join(service.lines)


@pytest.mark.parametrize(
    ("tracker", "setting", "stage"),
    [(True, "auto", "tracker"), (False, "auto", "inference"), (True, "inference", "inference"),
     (False, "tracker", "tracker")],
)  # fmt: skip
def test_the_metadata_stage_follows_the_tracker(
    tmp_path: Path, tracker: bool, setting: str, stage: str
) -> None:
    group = "[tracker]\nenable=1\nll-lib-file=/x/libnvds_mot_iou.so\n" if tracker else ""
    config = write_app(tmp_path, group + "[sink0]\nenable=1\ntype=1\n")
    settings = OverlaySettings(pipeline_config=config, input_stage=setting)
    assert settings.metadata_stage(load_pipeline(config)[0]) == stage


def test_the_removed_frames_setting_is_refused_by_name(tmp_path: Path) -> None:
    """`frames: muxer|source` is gone (each FrameRef says its pixel size and placement): an old
    settings file that still has it fails to load, naming the key and where it is."""
    config = write_app(tmp_path, "[sink0]\nenable=1\ntype=1\n")
    path = tmp_path / "overlay.yaml"
    path.write_text(f"pipeline_config: {config}\nframes: muxer\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(OverlaySettings, ["--config", str(path)])
    assert f"frames (from {path}:2): unknown setting, got 'muxer'" in str(caught.value)


def test_a_frame_whose_ring_died_with_its_writer_waits_for_the_copy_published_again(
    tmp_path: Path, redis_url: str, ring: SharedMemoryRing
) -> None:
    """A killed ingest's ring is gone: its frames wait, unacknowledged, until the restarted
    ingest publishes them again (same numbers and capture times, pixels in its new ring); the
    copies are drawn, the first deliveries then acknowledged as duplicates, nothing dropped."""
    captured = {n: Timestamp(seconds=1_700_000_000 + n) for n in range(FRAMES)}

    def frames(store: FrameStore) -> list[FrameMetadata]:
        out = []
        for n in range(FRAMES):
            ref = store.store(np.full((240, 320, 3), 90, np.uint8),
                              FrameRef(stream_id="cam-a", frame_number=n, width=320, height=240,
                                       capture_time=captured[n]))  # fmt: skip
            out.append(FrameMetadata(frame=ref, model_name="m"))
        return out

    dead = SharedMemoryRing.create(segment_name("dead"), slots=FRAMES, slot_bytes=320 * 240 * 3)
    stale = frames(FrameStore(dead))
    dead.unlink()  # what the resource tracker does when the writer is SIGKILLed
    dead.close()
    config = write_app(tmp_path, f"[sink0]\nenable=1\ntype=3\ncontainer=1\ncodec=1\nenc-type=1\n"
                       f"output-file={tmp_path}/out.mp4\n")  # fmt: skip
    path = settings(tmp_path, config, redis_url)
    data = yaml.safe_load(path.read_text())
    data["consumer"] = {"min_idle_ms": 200, "reclaim_interval_ms": 100, "max_deliveries": 100}
    path.write_text(yaml.safe_dump(data))
    stream = streams.metadata("inference", PIPELINE)
    with RedisBus(BusSettings(url=redis_url), registry=CollectorRegistry()) as bus:
        out = bus.publisher(stream, FrameMetadata)
        out.publish_many(stale)
        service = ServiceProcess([*COMMAND, "--config", str(path)], {})
        service.wait_running()
        service.wait_for(
            lambda: metric(service, "heron_overlay_frames_total", 'result="waiting"') >= FRAMES,
            "every stale frame to wait",
        )
        out.publish_many(frames(FrameStore(ring)))  # the restarted ingest's copies
        client = redis.Redis.from_url(redis_url)
        service.wait_for(
            lambda: client.xpending(stream.key, "overlay")["pending"] == 0 or None,
            "the stale deliveries to be acknowledged",
        )
    assert metric(service, "heron_overlay_frames_total", 'result="drawn"') == FRAMES
    assert metric(service, "heron_overlay_frames_total", 'result="duplicate"') == FRAMES
    service.signal(signal.SIGTERM)
    assert service.wait() == EXIT_OK
    assert not client.exists(streams.events(PIPELINE).key)  # no frame announced as dropped
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == FRAMES

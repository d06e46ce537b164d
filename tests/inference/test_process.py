"""`python -m heron.inference` as a real process: probes, metadata out, clean SIGTERM."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

from heron.core import streams
from heron.core.bus import RedisBus
from heron.v1.frame_pb2 import FrameBatch
from prometheus_client import CollectorRegistry

from tests.core.runtime.service_process import ServiceProcess
from tests.inference.conftest import ExportedDetector, write_nvinfer, write_pipeline
from tests.inference.harness import frame_image

DOC = Path(__file__).resolve().parents[2] / "docs" / "inference.md"


def documented_settings() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    return str(blocks[0])


def test_service_process_serves_and_stops(
    tmp_path: Path, redis_url: str, detector: ExportedDetector
) -> None:
    from heron.core.framestore import FrameStore
    from heron.v1.frame_pb2 import FrameRef

    settings = tmp_path / "inference.yaml"
    settings.write_text(documented_settings(), encoding="utf-8")
    pipeline = write_pipeline(tmp_path, write_nvinfer(tmp_path, detector.onnx))
    proc = ServiceProcess(
        [sys.executable, "-m", "heron.inference", "-c", str(settings)],
        {"HERON_REDIS_URL": redis_url, "HERON_PIPELINE_CONFIG": str(pipeline)},
    )
    bus = RedisBus.from_url(redis_url, registry=CollectorRegistry())
    try:
        proc.wait_running()
        status, body = proc.probe("/readyz")
        assert status == 200, body
        assert {c["name"] for c in body["checks"]} >= {"redis", "model loaded", "backend"}
        store = FrameStore()
        publisher = bus.publisher(streams.batches("default"), FrameBatch)
        for b in range(3):
            ref = store.store(
                frame_image(0, b, 112, 64), FrameRef(stream_id="source-0", frame_number=b), "jpeg"
            )
            publisher.publish(FrameBatch(batch_id=b, frames=[ref], width=112, height=64))
        meta = streams.metadata("inference").key
        proc.wait_for(lambda: bus.client.xlen(meta) == 3, "three metadata messages")
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
    finally:
        proc.kill()
        bus.close()
    assert any(r["message"] == "serving" for r in proc.records())

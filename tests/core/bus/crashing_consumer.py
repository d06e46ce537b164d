"""A consumer process that reads a batch, reports what it got and then hangs without acking.

Run by test_crash.py as `python -m tests.core.bus.crashing_consumer URL STAGE PIPELINE GROUP
NAME COUNT` and killed with SIGKILL: a crash in the middle of a batch.
"""

from __future__ import annotations

import json
import sys
import time

from heron.core import streams
from heron.core.bus import BusSettings, ConsumerSettings, Delivery, RedisBus
from heron.v1.detection_pb2 import FrameMetadata
from prometheus_client import CollectorRegistry


def main(argv: list[str]) -> None:
    url, stage, pipeline, group, name, count = argv
    settings = BusSettings(socket_timeout_s=3, consumer=ConsumerSettings(block_ms=200))
    bus = RedisBus.from_url(url, settings, registry=CollectorRegistry())
    consumer = bus.consumer(streams.metadata(stage, pipeline), FrameMetadata, group, name)
    batch: list[Delivery[FrameMetadata]] = []
    while len(batch) < int(count):
        batch += consumer.read(count=int(count) - len(batch))
    print(json.dumps([d.id for d in batch]), flush=True)
    time.sleep(600)  # "processing": the test kills us here, before any ack


if __name__ == "__main__":
    main(sys.argv[1:])

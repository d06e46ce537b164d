"""Health of heron.v1.Detections and heron.v1.Pipeline follows Redis: NOT_SERVING while the
test's redis-server is stopped, SERVING once it is back; a subscription open through the
outage ends UNAVAILABLE and resumes from its position."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from heron.core.grpc import open_channel
from heron.v1.control_pb2 import SubscribeRequest

from tests.control.control_harness import (
    Metadata,
    control,
    frame_numbers,
    new_pipeline,
    subscription,
    take,
)
from tests.support.redis_server import RedisServer

SERVICES = ("heron.v1.Detections", "heron.v1.Pipeline")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def wait_status(
    port: int, wanted: int, timeout_s: float = 10.0, services: tuple[str, ...] = SERVICES
) -> float:
    """Seconds until the health of every one of `services` is `wanted`."""
    started = time.monotonic()
    with open_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in services:
            request = health_pb2.HealthCheckRequest(service=service)
            while health.Check(request, timeout=5).status != wanted:
                if time.monotonic() - started > timeout_s:
                    raise AssertionError(f"{service} did not become {wanted} in {timeout_s} s")
                time.sleep(0.05)
    return time.monotonic() - started


def test_health_follows_redis(redis_server: RedisServer) -> None:
    pipeline = new_pipeline()
    with control(redis_server.url, pipeline) as server:
        wait_status(server.port, SERVING)
        metadata = Metadata(redis_server.url, pipeline)
        metadata.publish(range(3))
        with subscription(server.port, SubscribeRequest(from_oldest=True)) as events:
            last = take(events, 3)[-1].position
            redis_server.stop()
            assert wait_status(server.port, NOT_SERVING) < 3.0
            with pytest.raises(grpc.RpcError) as e:
                next(events)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "after" in (e.value.details() or "")
        redis_server.start()
        assert wait_status(server.port, SERVING) < 3.0
        # This Redis forgot everything: the old position is past its newest entry, and the
        # subscription goes on with what is published from now on.
        with subscription(server.port, SubscribeRequest(after=last)) as events:
            time.sleep(0.3)
            metadata.publish(range(3, 6))
            assert frame_numbers(take(events, 3)) == [3, 4, 5]
        metadata.close()

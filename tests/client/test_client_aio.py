"""The asyncio client against a real gRPC server: the same behaviour as the blocking one."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from heron.client import (
    AsyncClient,
    AsyncSubscription,
    ClientSettings,
    ImageError,
    NotFoundError,
    ServerUnavailableError,
    UnauthenticatedError,
)
from heron.v1 import control_pb2

from tests.client.client_fakes import MODEL, Fakes, position, serving, start
from tests.support.redis_server import free_port


async def _take(subscription: AsyncSubscription, count: int) -> list[control_pb2.DetectionEvent]:
    return [await anext(subscription) for _ in range(count)]


def test_subscribe_resumes_after_the_server_drops_the_stream() -> None:
    fakes = Fakes()

    async def scenario() -> tuple[list[int], AsyncSubscription]:
        server = start(fakes)
        port = server.port
        async with AsyncClient(f"127.0.0.1:{port}") as client:
            subscription = client.subscribe(from_oldest=True)
            fakes.detections.publish(4)
            events = await _take(subscription, 4)
            server.stop()
            fakes.detections.publish(4)
            server = start(fakes, port=port)
            try:
                events += await _take(subscription, 4)
            finally:
                subscription.cancel()
                server.stop()
        return [e.frame.frame.frame_number for e in events], subscription

    numbers, subscription = asyncio.run(scenario())
    assert numbers == list(range(1, 9))
    assert subscription.position == position(8)
    assert fakes.detections.requests[-1].after == position(4)


def test_a_gap_reaches_the_caller() -> None:
    fakes = Fakes()
    fakes.detections.publish(5)
    fakes.detections.trim(oldest=4)

    async def scenario() -> list[control_pb2.DetectionEvent]:
        with serving(fakes) as server:
            async with (
                AsyncClient(f"127.0.0.1:{server.port}") as client,
                client.subscribe(after=position(1)) as subscription,
            ):
                return await _take(subscription, 3)

    gap, *frames = asyncio.run(scenario())
    assert gap.gap.missed == 2
    assert [e.frame.frame.frame_number for e in frames] == [4, 5]


def test_every_method() -> None:
    fakes = Fakes()

    async def scenario() -> None:
        with serving(fakes) as server:
            async with AsyncClient(f"127.0.0.1:{server.port}") as client:
                assert (await client.add_source("file:///a.mp4")).source.stream_id == "source-0"
                assert len(await client.list_sources()) == 1
                assert (await client.get_source("source-0")).source.uri == "file:///a.mp4"
                assert (await client.get_status()).pipeline == "face-mask"
                assert len([s async for s in client.watch_status(interval_s=0.01)]) == 3
                await client.set_parameters(thresholds={0: 0.3}, interval=1)
                routing = await client.set_model_versions(default_version="4")
                assert list(routing.loaded) == ["3", "4"]
                assert (await client.get_model_versions()).default_version == "4"
                assert (await client.remove_source("source-0")).frames == 250
                with pytest.raises(NotFoundError, match="not found: no stream 'cam-9'"):
                    await client.remove_source("cam-9")
                assert await client.get_model() == MODEL
                response = await client.detect([np.zeros((2, 3, 3), np.uint8)])
                assert (response.results[0].width, response.results[0].height) == (3, 2)
                batches = [[np.zeros((2, 2), np.uint8)]] * 2
                assert len([r async for r in client.detect_stream(batches)]) == 2

    asyncio.run(scenario())
    assert fakes.pipeline.parameters[0].interval == 1


def test_detect_stream_raises_an_image_it_cannot_send() -> None:
    async def scenario() -> None:
        with serving(Fakes()) as server:
            async with AsyncClient(f"127.0.0.1:{server.port}") as client:
                responses = client.detect_stream([[np.zeros((2, 2), np.uint8)], [b"junk"]])
                with pytest.raises(ImageError, match="expected a JPEG or PNG image"):
                    _ = [response async for response in responses]

    asyncio.run(scenario())


def test_the_token_on_unary_calls() -> None:
    async def scenario() -> None:
        with serving(Fakes(), token="s3cret") as server:
            target = f"127.0.0.1:{server.port}"
            async with AsyncClient(ClientSettings(target=target, token="s3cret")) as client:
                assert await client.get_model() == MODEL
            async with AsyncClient(ClientSettings(target=target, token="nope")) as client:
                with pytest.raises(UnauthenticatedError, match="the token is wrong"):
                    await client.get_model()

    asyncio.run(scenario())


def test_the_token_on_streaming_calls() -> None:
    async def scenario() -> None:
        fakes = Fakes()
        fakes.detections.publish(1)
        with serving(fakes, token="s3cret") as server:
            settings = ClientSettings(target=f"127.0.0.1:{server.port}", token="s3cret")
            async with AsyncClient(settings) as client:
                assert len([s async for s in client.watch_status(interval_s=0.01)]) == 3
                async with client.subscribe(from_oldest=True) as subscription:
                    assert (await anext(subscription)).position == position(1)

    asyncio.run(scenario())


def test_an_absent_server_is_reported_at_once() -> None:
    port = free_port()

    async def scenario() -> None:
        async with AsyncClient(f"127.0.0.1:{port}") as client:
            with pytest.raises(ServerUnavailableError, match="cannot reach the Heron server"):
                await client.get_status()
            with pytest.raises(ServerUnavailableError, match="cannot reach the Heron server"):
                await anext(client.subscribe())

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 5

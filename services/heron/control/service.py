"""The control service: the gRPC API of a running pipeline (docs/grpc.md).

`start()` builds the bus (no consumer group: subscribers read the last stage's metadata stream
from their own positions), starts the status board (heartbeats and rates) and the kit's gRPC
server with Pipeline and Detections; `step()` keeps the health of both in line with Redis
(NOT_SERVING while it does not answer a PING); `drain()` stops the server: open subscriptions
end with UNAVAILABLE and a client resumes from its last position elsewhere or later.
"""

from __future__ import annotations

import logging
import sys

from heron.control.detections import SERVICE as DETECTIONS
from heron.control.detections import DetectionsServicer
from heron.control.metrics import SubscribeMetrics
from heron.control.pipeline import SERVICE as PIPELINE
from heron.control.pipeline import PipelineServicer
from heron.control.status_board import BoardSettings, StatusBoard
from heron.core import streams
from heron.core.commands import CommandSender
from heron.core.grpc.server import RunningServer, ServiceBinding, start_server
from heron.core.plan.settings.control import ControlSettings
from heron.core.runtime import FatalError, FlagCheck, Service, run_service
from heron.v1 import control_pb2_grpc
from heron.v1.detection_pb2 import FrameMetadata

log = logging.getLogger(__name__)

# Threads beyond the subscriptions' own, for unary calls (health, reflection) beside them.
SPARE_WORKERS = 8


class ControlService(Service[ControlSettings]):
    def start(self) -> None:
        s = self.settings
        self.redis = self.ctx.check_bus()  # None in one process: the queues are ours
        serving = self.ctx.readiness.add(FlagCheck("gRPC server"))
        self.bus = s.bus(self.ctx.metrics.registry, self.ctx.transport)
        stream = streams.metadata(s.stage, s.pipeline)
        self.detections = servicer = DetectionsServicer(
            self.bus.tail(stream, FrameMetadata),
            s.subscribe,
            SubscribeMetrics(self.ctx.metrics.registry),
            self.ctx.shutdown.requested,
        )
        pipeline = self._pipeline()
        bindings = [
            ServiceBinding(
                PIPELINE,
                lambda server: control_pb2_grpc.add_PipelineServicer_to_server(pipeline, server),
            ),
            ServiceBinding(
                DETECTIONS,
                lambda server: control_pb2_grpc.add_DetectionsServicer_to_server(servicer, server),
            ),
        ]
        try:
            self.server: RunningServer | None = start_server(
                s.grpc, bindings, max_workers=s.subscribe.max_subscribers + SPARE_WORKERS
            )
        except (OSError, ValueError) as e:  # a taken port, a missing certificate: say it once
            raise FatalError(f"gRPC server: {e}") from None
        self.serving: bool | None = None
        serving.set(f"listening on port {self.server.port}")
        log.info("serving detections of %s", stream.key, extra={"grpc_port": self.server.port})

    def _pipeline(self) -> PipelineServicer:
        s = self.settings
        api = s.pipeline_api
        self.board = StatusBoard(
            self.bus,
            BoardSettings(
                stage=s.stage,
                pipeline=s.pipeline,
                stale_s=api.heartbeat_stale_s,
                forget_s=api.heartbeat_forget_s,
                rate_window_s=api.rate_window_s,
            ),
        )
        self.board.start()
        sender = CommandSender(self.bus, s.pipeline)
        return PipelineServicer(sender, self.board, api, self.ctx.shutdown.requested)

    @property
    def port(self) -> int:
        """The bound gRPC port (the one asked for, or the free one port 0 got)."""
        assert self.server is not None
        return self.server.port

    def step(self) -> None:
        ok = self.redis is None or self.redis.check().ok
        if ok != self.serving and self.server is not None:
            for name in (PIPELINE, DETECTIONS):
                self.server.set_serving(name, ok)
            if self.serving is not None or not ok:
                log.log(
                    logging.INFO if ok else logging.WARNING,
                    "%s and %s are %s",
                    PIPELINE,
                    DETECTIONS,
                    "SERVING: Redis answers again" if ok else "NOT_SERVING: Redis does not answer",
                )
            self.serving = ok
        self.ctx.wait(self.settings.health_interval_s)

    def drain(self) -> None:
        self._stop_server()

    def close(self) -> None:
        self._stop_server()
        board = getattr(self, "board", None)
        if board is not None:
            board.stop()
        bus = getattr(self, "bus", None)
        if bus is not None:
            bus.close()

    def _stop_server(self) -> None:
        server = getattr(self, "server", None)
        if server is not None:
            server.stop()
            self.server = None


def main(argv: list[str] | None = None) -> int:
    return run_service(ControlService, ControlSettings, argv)


__all__ = ["ControlService", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

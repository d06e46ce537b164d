"""The inference service's gRPC server: the Detector service, with health that follows the
backend.

Health (`grpc.health.v1`, for `heron.v1.Detector` and the server as a whole, ""): the server
starts once the model is loaded, so SERVING from the first probe. It turns NOT_SERVING when a
backend call (the bus loop's or a Detect's) finds the backend unavailable, or when the watcher,
which asks `backend.ready()` every `poll_s` (Triton: server and model ready, on a probe client
of its own), hears it is not; SERVING again on the next success of either.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import grpc

from heron.core.grpc.server import RunningServer, ServiceBinding, start_server
from heron.core.grpc.settings import GrpcServerSettings, split_listen
from heron.inference.grpc_api import SERVICE_NAME, InferenceDetectorServicer
from heron.inference.shared_backend import SharedBackend
from heron.v1.detector_pb2_grpc import add_DetectorServicer_to_server

log = logging.getLogger(__name__)

POLL_S = 1.0


class DetectorServer:
    def __init__(
        self,
        settings: GrpcServerSettings,
        servicer: InferenceDetectorServicer,
        backend: SharedBackend,
        ready: Callable[[], bool],
        *,
        poll_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.servicer = servicer
        self.backend = backend
        self.ready = ready
        self.poll_s = POLL_S if poll_s is None else poll_s
        self._serving = True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="detector-health", daemon=True)
        self.running: RunningServer | None = None

    @property
    def port(self) -> int:
        if self.running is None:
            raise RuntimeError("the Detector server is not running")
        return self.running.port

    def start(self) -> None:
        def add(server: grpc.Server) -> None:
            add_DetectorServicer_to_server(self.servicer, server)

        self.running = start_server(self.settings, [ServiceBinding(SERVICE_NAME, add)])
        self.backend.on_health = self.set_serving
        self._watcher.start()
        host, _ = split_listen(self.settings.listen)
        log.info("gRPC Detector listening on %s:%d", host, self.running.port)

    def set_serving(self, serving: bool) -> None:
        """The health of the Detector (and of the server: it serves nothing else)."""
        with self._lock:
            if serving == self._serving or self.running is None:
                return
            self._serving = serving
            for service in (SERVICE_NAME, ""):
                self.running.set_serving(service, serving)
        if serving:
            log.info("gRPC Detector health: SERVING (the backend is back)")
        else:
            log.warning("gRPC Detector health: NOT_SERVING (the backend is unavailable)")

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.set_serving(self.ready())

    def stop(self) -> None:
        """Stop the watcher, then the server (in-flight calls get `grace_s`)."""
        self._stop.set()
        self.backend.on_health = None
        if self._watcher.is_alive():
            self._watcher.join(timeout=self.poll_s + 5.0)
        with self._lock:
            running, self.running = self.running, None
        if running is not None:
            running.stop()

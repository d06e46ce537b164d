"""Heartbeats on the bus: every service that has a bus says, every `status_interval_s`, whether
it serves and why not (its readiness checks), on streams.service_status(pipeline).

The control service builds GetStatus from them (a heartbeat older than a few intervals means
the service is gone); Kubernetes keeps using /readyz. A service adds what only it knows, such
as the model inference serves, to `ServiceContext.status` before it starts serving.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from heron.core import streams
from heron.core.bus import Bus, BusError, Publisher, default_consumer_name
from heron.core.runtime.health import Readiness
from heron.v1.control_pb2 import ServiceStatus

log = logging.getLogger(__name__)


@dataclass
class StatusFields:
    """What a service adds to its heartbeats."""

    model_name: str = ""
    model_version: str = ""


def instance_name(member: str | None) -> str:
    """A replica's name in heartbeats and replies: its consumer name, else host and pid."""
    return member or default_consumer_name()


class StatusReporter(threading.Thread):
    """Publishes the service's ServiceStatus now and every `interval_s` until stopped; the
    last one, at stop, says it is no longer serving."""

    def __init__(
        self,
        bus: Bus,
        pipeline: str,
        *,
        service: str,
        instance: str,
        readiness: Readiness,
        fields: StatusFields,
        interval_s: float,
    ) -> None:
        super().__init__(name=f"{service}-status", daemon=True)
        self.bus = bus
        self.service = service
        self.instance = instance
        self.readiness = readiness
        self.fields = fields
        self.interval_s = interval_s
        self._out: Publisher[ServiceStatus] = bus.publisher(
            streams.service_status(pipeline), ServiceStatus
        )
        self._stopping = threading.Event()
        self._failing = False

    def status(self, *, stopped: bool = False) -> ServiceStatus:
        failing = [r for r in self.readiness.run() if not r.ok]
        detail = "stopped" if stopped else "; ".join(f"{r.name}: {r.detail}" for r in failing)
        message = ServiceStatus(
            name=self.service,
            instance=self.instance,
            serving=not stopped and not failing,
            detail=detail,
            model_name=self.fields.model_name,
            model_version=self.fields.model_version,
        )
        message.time.GetCurrentTime()
        return message

    def run(self) -> None:
        while True:
            self.publish(self.status())
            if self._stopping.wait(self.interval_s):
                return

    def stop(self) -> None:
        """Stop beating and say so (best effort: the bus may be what is down)."""
        self._stopping.set()
        if self.is_alive():
            self.join(self.interval_s + 1)
        self.publish(self.status(stopped=True))
        self.bus.close()

    def publish(self, status: ServiceStatus) -> None:
        try:
            self._out.publish(status)
        except BusError as e:  # said once per outage; readiness already reports Redis
            if not self._failing:
                log.warning("cannot publish the service status: %s", e)
            self._failing = True
            return
        self._failing = False

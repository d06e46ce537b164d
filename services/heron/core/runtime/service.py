"""The base of every service process and the one function that runs it.

    class Tracker(Service[TrackerSettings]):
        def start(self) -> None: ...   # open clients, load models, register readiness checks
        def step(self) -> None: ...    # one pass of the main loop (read a batch, handle it)
        def drain(self) -> None: ...   # after a stop request: finish and ack in-flight work
        def close(self) -> None: ...   # release clients

    def main() -> None:
        sys.exit(run_service(Tracker, TrackerSettings))

`run_service` loads the settings, configures logs, serves /metrics, /healthz and /readyz,
installs the SIGTERM/SIGINT handlers, then ticks the liveness heartbeat and calls `step()` until
a stop is requested. The context handed to the service is the only wiring it gets: tests build
one with `build_context` and swap what they need.
"""

from __future__ import annotations

import logging
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry

from heron.core.bus import BackoffSettings, RedisTransport, Transport
from heron.core.runtime.bus_settings import BusClientSettings, BusConsumerSettings
from heron.core.runtime.endpoint import HealthServer
from heron.core.runtime.health import Heartbeat, Readiness, RedisCheck
from heron.core.runtime.logs import configure_logging
from heron.core.runtime.metrics import ServiceMetrics
from heron.core.runtime.redact import secret_values
from heron.core.runtime.settings import (
    HelpShown,
    ServiceSettings,
    SettingsError,
    load_settings,
)
from heron.core.runtime.shutdown import (
    EXIT_BAD_SETTINGS,
    EXIT_FAILED,
    EXIT_FATAL,
    EXIT_OK,
    FatalError,
    Shutdown,
)
from heron.core.runtime.status import StatusFields, StatusReporter, instance_name

S = TypeVar("S", bound=ServiceSettings)

log = logging.getLogger(__name__)


@dataclass
class ServiceContext(Generic[S]):
    """What a service gets from the runtime: its settings and the process's shared parts."""

    settings: S
    metrics: ServiceMetrics
    readiness: Readiness
    heartbeat: Heartbeat
    shutdown: Shutdown
    # What carries the service's messages: Redis streams, or queues when its runner hosts
    # every stage in one process. Services pass it to `settings.bus(...)`.
    transport: Transport = field(default_factory=RedisTransport)
    # What the service adds to its heartbeats (heron.core.runtime.status), such as its model.
    status: StatusFields = field(default_factory=StatusFields)

    @property
    def stopping(self) -> bool:
        return self.shutdown.requested.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on a stop request; True when stopping."""
        return self.shutdown.requested.wait(seconds)

    def stop(self, reason: str) -> None:
        """Stop from inside (end of a file source, a fatal condition), as SIGTERM would."""
        self.shutdown.request(reason)

    def check_bus(self, name: str = "redis") -> RedisCheck | None:
        """On Redis, register a readiness check that PINGs it on every probe; in one process
        the queues are the process's own memory, with nothing to check."""
        if not isinstance(self.transport, RedisTransport):
            return None
        check = RedisCheck(self.settings.redis_url, self.settings.readiness_timeout_s, name)
        self.readiness.add(check)
        return check


def build_context(
    settings: S,
    registry: CollectorRegistry | None = None,
    *,
    exit: Callable[[int], object] = os._exit,
    transport: Transport | None = None,
) -> ServiceContext[S]:
    """Wire the runtime's parts for `settings` (no signals, no server: `run_service` adds those).

    `exit` is what the shutdown watchdog calls when in-flight work outlives the grace period:
    the process's `os._exit` for a real service; a service embedded in another process (a test,
    say) passes something that must not end its host.
    """
    shutdown = Shutdown(settings.shutdown_grace_s, exit=exit)
    return ServiceContext(
        settings=settings,
        metrics=ServiceMetrics(
            settings.service_name,
            registry,
            # A service on the bus belongs to one pipeline; one off it (the engine) to none.
            pipeline=settings.pipeline if isinstance(settings, BusClientSettings) else "",
        ),
        readiness=Readiness(stopping=shutdown.requested),
        heartbeat=Heartbeat(
            settings.liveness_timeout_s, settings.startup_timeout_s, stopping=shutdown.requested
        ),
        shutdown=shutdown,
        transport=transport or RedisTransport(),
    )


class Service(ABC, Generic[S]):
    """One service's work, driven by `run_service`; only `step` is required."""

    def __init__(self, ctx: ServiceContext[S]) -> None:
        self.ctx = ctx
        self.settings: S = ctx.settings

    def start(self) -> None:
        """Open clients, load models, register readiness checks. May take long: /healthz
        allows `startup_timeout_s` before the first tick."""

    @abstractmethod
    def step(self) -> None:
        """One pass of the main loop. Return within `liveness_timeout_s`; wait with
        `ctx.wait()` rather than `time.sleep()` so a stop request cuts the wait short."""

    def drain(self) -> None:
        """Called once after a stop request: finish and acknowledge in-flight work. Bounded by
        `shutdown_grace_s`; past it the process exits non-zero and unacked work is redelivered."""

    def close(self) -> None:
        """Release clients and files; runs after `drain`, and after a failure too."""


def run_service(
    service_cls: Callable[[ServiceContext[S]], Service[S]],
    settings_cls: type[S],
    argv: Sequence[str] | None = None,
) -> int:
    """Run one service process to its end; returns the exit code for `sys.exit`."""
    configure_logging(_default_name(settings_cls))
    try:
        settings = load_settings(settings_cls, sys.argv[1:] if argv is None else argv)
    except HelpShown:
        return EXIT_OK
    except SettingsError as e:
        log.error("%s", e, extra={"problems": e.problems})
        return EXIT_BAD_SETTINGS
    configure_logging(
        settings.service_name, settings.log.level, settings.log.format, secret_values(settings)
    )
    log.info("starting", extra={"settings": settings.redacted()})
    ctx = build_context(settings)
    try:
        server = HealthServer(
            settings.metrics.host,
            settings.metrics.port,
            ctx.metrics.registry,
            ctx.heartbeat.check,
            ctx.readiness,
        )
    except OSError as e:
        log.error(
            "cannot listen on %s:%d: %s", settings.metrics.host, settings.metrics.port, e.strerror
        )
        return EXIT_FAILED
    ctx.shutdown.install()
    server.start()
    try:
        return serve(service_cls, ctx)
    finally:
        server.stop()
        ctx.readiness.close()
        ctx.shutdown.uninstall()


def serve(service_cls: Callable[[ServiceContext[S]], Service[S]], ctx: ServiceContext[S]) -> int:
    """Start the service, step it until a stop is requested, drain and close it; the exit
    code. `run_service` calls it for a process; `heron run --in-process`, for each thread."""
    service: Service[S] | None = None
    reporter: StatusReporter | None = None
    try:
        service = service_cls(ctx)
        service.start()
        if not ctx.stopping:
            ctx.metrics.set_up(True)
            reporter = _start_reporter(ctx)
            log.info("running")
        while not ctx.stopping:
            ctx.heartbeat.beat()
            service.step()
        ctx.metrics.set_up(False)
        service.drain()
    except FatalError as e:  # said in one line: a traceback adds nothing to "disk is full"
        ctx.metrics.set_up(False)
        log.error("fatal: %s", e)
        _stop_reporter(reporter)
        _close(service)
        ctx.shutdown.finished()
        return EXIT_FATAL
    # Anything else a service raises ends the process with a logged traceback and exit 1; unacked
    # messages stay pending and another consumer reclaims them.
    except Exception:
        ctx.metrics.set_up(False)
        log.exception("service failed")
        _stop_reporter(reporter)
        _close(service)
        ctx.shutdown.finished()
        return EXIT_FAILED
    _stop_reporter(reporter)
    ok = _close(service)
    ctx.shutdown.finished()
    log.info("stopped", extra={"reason": ctx.shutdown.reason})
    return EXIT_OK if ok else EXIT_FAILED


def _start_reporter(ctx: ServiceContext[S]) -> StatusReporter | None:
    """Heartbeats for a service on the bus (status_interval_s > 0); its bus is its own, with
    metrics apart from the service's (two buses cannot share one registry's metric names)."""
    settings = ctx.settings
    if not isinstance(settings, BusClientSettings) or settings.status_interval_s <= 0:
        return None
    member = settings.member if isinstance(settings, BusConsumerSettings) else None
    # A heartbeat that cannot go out within its interval is stale anyway: never wait longer
    # (a service stopping while Redis is away must not hang on its last heartbeat).
    patience = BackoffSettings(max_s=1.0, give_up_after_s=max(settings.status_interval_s, 0.5))
    bus_settings = settings.bus_settings().model_copy(update={"backoff": patience})
    reporter = StatusReporter(
        ctx.transport.bus(bus_settings, CollectorRegistry()),
        settings.pipeline,
        service=settings.service_name,
        instance=instance_name(member),
        readiness=ctx.readiness,
        fields=ctx.status,
        interval_s=settings.status_interval_s,
    )
    reporter.start()
    return reporter


def _stop_reporter(reporter: StatusReporter | None) -> None:
    if reporter is not None:
        reporter.stop()


def _close(service: Service[S] | None) -> bool:
    if service is None:
        return True
    try:
        service.close()
    except Exception:  # reported, and turned into a non-zero exit by the caller
        log.exception("closing the service failed")
        return False
    return True


def _default_name(settings_cls: type[ServiceSettings]) -> str:
    """The service name to log under before settings are loaded (the class default, if any)."""
    default = settings_cls.model_fields["service_name"].default
    return default if isinstance(default, str) else "heron"

"""How the operator runs: kopf's settings made from Heron's, one login for kopf and the
operator's own API calls, and peering so that of several replicas exactly one acts.

Leader election is kopf's peering: every replica writes a keep-alive with its priority into
the peering object (a KopfPeering named `peering_name`, a ClusterKopfPeering when
cluster-wide); a replica that sees a live peer of higher priority pauses, and resumes when
that peer's entry expires or is removed (a replica removes its own on a clean stop). The
default priority is the start time, negated: the oldest replica leads, and a replica started
later (a rollout, a second replica) waits instead of taking over. Peering is mandatory unless
`standalone`: a replica acts only once it has seen the peering object.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

import kopf
from heron.core.runtime.redact import Redactor
from prometheus_client import start_http_server
from pydantic import ValidationError

from heron_operator import engine_build, engine_rollout, training_run
from heron_operator.kube import JOBS, Kube
from heron_operator.settings import OperatorSettings
from heron_operator.steps import Context

FINALIZER = "heron.dev/operator"
ANNOTATIONS_PREFIX = "heron.dev"
JOBS_SELECTOR = "app.kubernetes.io/managed-by=heron-operator"  # on every Job it creates


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    k = kopf.OperatorSettings()
    # kopf's own state goes into annotations; status is the controller's alone.
    k.persistence.finalizer = FINALIZER
    k.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATIONS_PREFIX)
    k.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATIONS_PREFIX, key="last-handled-configuration"
    )
    # Events are the controller's explicit ones; kopf's handler logs stay logs.
    k.posting.level = logging.WARNING
    k.posting.reporting_component = "heron-operator"
    # No watching of namespaces and CRDs (and no RBAC for them): exact namespaces, CRDs
    # installed before the operator starts (the chart's crds/).
    k.scanning.disabled = True
    k.watching.server_timeout = settings.watch_timeout_s
    k.watching.client_timeout = settings.watch_timeout_s + 30
    # Only the operator's own Jobs (builds', trainings') are watched, selected by the API server.
    k.watching.label_selectors[JOBS.group, JOBS.plural] = JOBS_SELECTOR
    # A deleted build waits for its resync timer to stop before the finalizer goes: a step
    # takes milliseconds, so look again soon rather than after kopf's default minute.
    k.background.instant_exit_timeout = 5.0
    k.background.cancellation_polling = 5.0
    k.peering.lifetime = settings.peering_lifetime_s
    k.peering.clusterwide = settings.clusterwide
    k.peering.stealth = True
    return k


def priority(settings: OperatorSettings) -> int:
    """The configured priority, else the start time negated (older replicas lead)."""
    return settings.priority if settings.priority is not None else -(time.time_ns() // 1000)


def connection(settings: OperatorSettings, k: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    """`api_server` as is, else the pod's service account, else the kubeconfig."""
    if settings.api_server:
        return kopf.ConnectionInfo(server=settings.api_server, default_namespace="default")
    info = kopf.login_with_service_account(settings=k) or kopf.login_with_kubeconfig(settings=k)
    if info is None:
        raise kopf.LoginError(
            "no service account token and no kubeconfig: run in a pod, set KUBECONFIG, or set "
            "HERON_OPERATOR_API_SERVER (e.g. the address of `kubectl proxy`)"
        )
    return info


async def operator(
    settings: OperatorSettings,
    *,
    stop_flag: Any = None,
    ready_flag: Any = None,
    identity: str | None = None,
    liveness_endpoint: str | None = None,
) -> None:
    """Run until `stop_flag` is set (an asyncio or threading Event or Future) or cancelled."""
    k = kopf_settings(settings)
    registry = kopf.OperatorRegistry()
    engine_build.register(registry, settings)
    engine_rollout.register(registry, settings)
    training_run.register(registry, settings)

    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection(settings, k)

    kopf.on.login(registry=registry)(login)
    context = Context(Kube(lambda: connection(settings, k)), settings)
    metrics_server = None
    if settings.metrics_port:
        metrics_server, _ = start_http_server(
            settings.metrics_port, addr="0.0.0.0", registry=context.metrics.registry
        )
    try:
        await kopf.operator(
            registry=registry,
            settings=k,
            clusterwide=settings.clusterwide,
            namespaces=settings.namespaces,
            standalone=settings.standalone,
            peering_name=None if settings.standalone else settings.peering_name,
            priority=priority(settings),
            identity=identity,  # type: ignore[arg-type]  # kopf's NewType of str
            liveness_endpoint=liveness_endpoint,
            memo=context,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        await context.kube.close()
        if metrics_server is not None:
            metrics_server.shutdown()


class RedactingFilter(logging.Filter):
    """A second line of defence on the operator's log handlers: the secrets of its settings and
    any password in a URL are masked in every record (no code path formats them anyway)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


def main() -> int:
    """`python -m heron_operator`: settings from HERON_OPERATOR_*; 2 when they are invalid."""
    try:
        settings = OperatorSettings()
    except ValidationError as e:
        print(f"invalid HERON_OPERATOR_* settings:\n{e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redacting = RedactingFilter(settings.secret_values())
    for handler in logging.getLogger().handlers:
        handler.addFilter(redacting)
    port = settings.health_port
    liveness = f"http://0.0.0.0:{port}/healthz" if port else None
    asyncio.run(operator(settings, liveness_endpoint=liveness))
    return 0

"""The pipelines an EngineRollout reaches: found as Services, driven through their gRPC API.

Each pipeline of the chart has a control Service labelled `heron.dev/api: pipeline` and
`heron.dev/pipeline: <name>`, with a port named `grpc` (charts/heron/templates/
control-service.yaml). The rollout's selector picks among them. Model versions are loaded and
routed by the pipeline itself (`heron.v1.Pipeline/SetModelVersions`: every inference instance
loads the version, from its model repository or its Triton, before any stream switches), so
the operator needs no access to Triton or to the model volume.

With the chart's gRPC security (grpc.tls, grpc.auth) the operator calls each pipeline over TLS,
trusting the CA of `pipeline_tls_ca_file` (mutual TLS with its own client certificate) and
checking that the certificate names the control Service (`<service>.<namespace>.svc`) whatever
address it dials, and sends the bearer token `pipeline_token` with every call.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from heron.client import AsyncClient, ClientSettings
from heron.client.errors import (
    DeadlineExceededError,
    HeronClientError,
    ResourceExhaustedError,
    ServerError,
    ServerUnavailableError,
)
from heron.core.grpc.channel import ClientTls
from heron.v1 import control_pb2 as pb

from heron_operator.kube import Resource
from heron_operator.settings import OperatorSettings

Json = dict[str, Any]
SERVICES = Resource("", "v1", "services", "Service")
API_LABEL = "heron.dev/api"  # "pipeline" on each pipeline's control Service
API_VALUE = "pipeline"
PIPELINE_LABEL = "heron.dev/pipeline"
GRPC_PORT_NAME = "grpc"
CALL_DEADLINE_S = 60.0  # SetModelVersions waits for every inference instance to load


@dataclass(frozen=True)
class PipelineRef:
    name: str  # the heron.dev/pipeline label (else the Service's name)
    service: str
    address: str  # host:port of its gRPC API


class PipelineCallError(Exception):
    """A call to a pipeline failed; `retryable` when trying again later may succeed (the
    pipeline is restarting or slow), else the pipeline refused (a version it cannot load)."""

    def __init__(self, pipeline: str, error: HeronClientError) -> None:
        super().__init__(f"pipeline {pipeline}: {error}")
        self.pipeline = pipeline
        self.code = error.code
        self.retryable = isinstance(
            error,
            ServerUnavailableError | DeadlineExceededError | ResourceExhaustedError | ServerError,
        )


def selector_with_api(selector: str) -> str:
    """The rollout's selector, narrowed to pipelines' control Services."""
    api = f"{API_LABEL}={API_VALUE}"
    return f"{selector},{api}" if selector else api


def pipeline_ref(service: Json) -> PipelineRef | None:
    """Where a control Service's gRPC API answers; None without a port to call."""
    meta, spec = service["metadata"], service.get("spec") or {}
    ports = spec.get("ports") or []
    port = next((p for p in ports if p.get("name") == GRPC_PORT_NAME), None) or (
        ports[0] if ports else None
    )
    if port is None:
        return None
    host = str(spec.get("clusterIP") or "")
    if not _is_ip(host):  # headless (None) or not yet assigned: the Service's DNS name
        host = f"{meta['name']}.{meta['namespace']}.svc"
    name = (meta.get("labels") or {}).get(PIPELINE_LABEL) or meta["name"]
    return PipelineRef(str(name), str(meta["name"]), f"{host}:{port['port']}")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Routing:
    """A pipeline's routing of model versions (heron.v1.ModelVersions), as the status keeps it."""

    default_version: str  # as set: "" = the config's model
    stream_versions: Mapping[str, str]
    config_version: str = ""

    @classmethod
    def from_proto(cls, message: pb.ModelVersions) -> Routing:
        return cls(message.default_version, dict(message.stream_versions), message.config_version)

    @property
    def serving(self) -> str:
        """The version every stream without its own runs."""
        return self.default_version or self.config_version


def client_settings(ref: PipelineRef, namespace: str, settings: OperatorSettings) -> ClientSettings:
    """How the operator dials `ref`: TLS and the token when its settings hold them."""
    tls = None
    if settings.pipeline_tls_ca_file is not None:
        tls = ClientTls(
            ca_file=settings.pipeline_tls_ca_file,
            cert_file=settings.pipeline_tls_cert_file,
            key_file=settings.pipeline_tls_key_file,
            server_name=f"{ref.service}.{namespace}.svc",
        )
    return ClientSettings(
        target=ref.address,
        tls=tls,
        token=settings.pipeline_token,
        deadline_s=settings.pipeline_call_timeout_s,
    )


class PipelineApi:
    """The calls a rollout makes to one pipeline, each on a fresh connection (a step makes a
    few calls a minute; no connection outlives the step that needed it)."""

    def __init__(self, ref: PipelineRef, settings: ClientSettings) -> None:
        self.ref = ref
        self._deadline_s = settings.deadline_s or CALL_DEADLINE_S
        self._settings = settings

    async def routing(self) -> Routing:
        async with AsyncClient(self._settings) as client:
            return Routing.from_proto(await self._call(client.get_model_versions()))

    async def streams(self) -> list[str]:
        """The pipeline's streams now (sources removed at run time left out)."""
        async with AsyncClient(self._settings) as client:
            sources = await self._call(client.list_sources())
        removed = pb.SOURCE_STATE_REMOVED
        return sorted(s.source.stream_id for s in sources if s.state != removed)

    async def route(self, routing: Routing, requested_by: str) -> Routing:
        async with AsyncClient(self._settings) as client:
            answer = await self._call(
                client.set_model_versions(
                    default_version=routing.default_version,
                    stream_versions=dict(routing.stream_versions),
                    requested_by=requested_by,
                    deadline_s=self._deadline_s,
                )
            )
        return Routing.from_proto(answer)

    async def _call(self, call: Any) -> Any:
        try:
            return await call
        except HeronClientError as e:
            raise PipelineCallError(self.ref.name, e) from e

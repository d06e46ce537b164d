"""The operator's settings, from `HERON_OPERATOR_*` environment variables (docs/operator.md).

Lists are JSON (`HERON_OPERATOR_NAMESPACES='["vision"]'`) or comma-separated
(`HERON_OPERATOR_NAMESPACES=vision,lab`).
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "HERON_OPERATOR_"
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _package_version() -> str:
    try:
        return version("heron")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "latest"


class OperatorSettings(BaseSettings):
    """What the operator watches, which images its Jobs run, how replicas elect a leader."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
        # A refused value is not repeated in the error: it may be a token or a URL's password.
        hide_input_in_errors=True,
    )

    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to serve (exact names); empty: every namespace (cluster-wide).",
    )
    image_registry: str = Field(
        "ghcr.io/heron-project", description="Registry of Heron's images: <registry>/heron-<role>."
    )
    image_tag: str = Field(
        default_factory=_package_version,
        description="Tag of Heron's images (the chart's appVersion).",
    )
    engine_image: str | None = Field(
        None, description="Image of the engine Jobs; default <registry>/heron-engine:<tag>."
    )
    training_image: str | None = Field(
        None, description="Image of the training Jobs; default <registry>/heron-training:<tag>."
    )
    image_pull_policy: str = Field("IfNotPresent", description="Pull policy of the Jobs' images.")
    image_pull_secrets: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Secrets the Jobs' pods pull images with."
    )
    run_as_user: int = Field(10001, ge=1, description="UID the Jobs run as (the images' user).")
    run_as_group: int = Field(10001, ge=1, description="GID the Jobs run as.")
    fs_group: int = Field(10001, ge=1, description="Group that owns the model volume's files.")
    peering_name: str = Field(
        "heron-operator",
        description="kopf peering object (KopfPeering, or ClusterKopfPeering when cluster-wide) "
        "the replicas share; one replica acts, the others wait.",
    )
    standalone: bool = Field(False, description="Run without peering (a single replica only).")
    priority: int | None = Field(
        None,
        description="Peering priority; default: the start time, negated, so the oldest replica "
        "leads and a new one never takes over from a live leader.",
    )
    peering_lifetime_s: int = Field(
        60,
        ge=5,
        description="A replica that stops refreshing its peering entry for this long "
        "counts as dead and the next one takes over.",
    )
    gate_timeout_s: int = Field(
        3600, ge=60, description="activeDeadlineSeconds of a gate (calibration) Job."
    )
    build_timeout_s: int = Field(
        3600, ge=60, description="activeDeadlineSeconds of a plan build Job."
    )
    backoff_limit: int = Field(1, ge=0, le=6, description="Retries of a failed Job pod.")
    job_ttl_s: int = Field(
        86400, ge=0, description="ttlSecondsAfterFinished: finished Jobs are removed after this."
    )
    job_cpu: str = Field("2", description="CPU request of a Job's container.")
    job_memory: str = Field("4Gi", description="Memory request and limit of a Job's container.")
    resync_s: float = Field(
        60.0,
        gt=0,
        description="An unfinished EngineBuild or TrainingRun is checked again this often (new "
        "GPU nodes, missed Job events, a running training's step).",
    )
    retry_s: float = Field(10.0, gt=0, description="Delay before a failed handler is retried.")
    rollout_poll_s: float = Field(
        10.0, gt=0, description="An unfinished EngineRollout is stepped this often (gates, soak)."
    )
    pipeline_call_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Deadline of one call to a pipeline's gRPC API (SetModelVersions waits "
        "until every inference instance has loaded the version).",
    )
    pipeline_answer_timeout_s: float = Field(
        600.0,
        gt=0,
        description="How long a rollout keeps asking pipelines that do not answer (restarting, "
        "away) before it gives up: loading or promoting rolls back, a rollback fails.",
    )
    pipeline_tls_ca_file: Path | None = Field(
        None,
        description="CA that signed the pipelines' gRPC certificates (the chart's grpc.tls): set, "
        "the operator calls them over TLS and checks that each certificate names the pipeline's "
        "control Service (<service>.<namespace>.svc); none: plaintext.",
    )
    pipeline_tls_cert_file: Path | None = Field(
        None, description="The operator's client certificate, PEM (mutual TLS, grpc.tls.mutual)."
    )
    pipeline_tls_key_file: Path | None = Field(
        None, description="The client certificate's private key, PEM (mutual TLS)."
    )
    pipeline_token: SecretStr | None = Field(
        None,
        description="Bearer token of the pipelines' gRPC APIs (the chart's grpc.auth), sent with "
        "every call; never logged, never in a status or an event.",
    )
    prometheus_url: str | None = Field(
        None,
        repr=False,  # it may carry a password
        description="Prometheus's HTTP API (http://prometheus-operated.monitoring:9090) for the "
        "rollout gates; none: the canary's gates are not measured and a soak cannot end in a "
        "promotion by itself. A user:password in it is sent as basic auth and shown nowhere.",
    )
    prometheus_namespace_label: str = Field(
        "namespace", description="The series label holding the pod's namespace; '' = none."
    )
    prometheus_pipeline_label: str = Field(
        "heron_dev_pipeline",
        description="The series label holding the pipeline's name (the chart's PodMonitor "
        "copies the pod label heron.dev/pipeline into it).",
    )
    gate_window_s: float = Field(
        120.0, ge=10, description="The gates read the canary's counts over this window."
    )
    gate_min_window_s: float = Field(
        30.0,
        ge=0,
        description="The canary's first seconds are not judged (frames in flight at the switch).",
    )
    api_server: str | None = Field(
        None,
        description="API server URL to use without credentials (`kubectl proxy`, tests); "
        "default: the pod's service account, else the kubeconfig.",
    )
    watch_timeout_s: int = Field(
        300, ge=1, description="Server-side timeout of a watch; kopf reconnects after it."
    )
    health_port: int | None = Field(
        None, ge=1, le=65535, description="Port of kopf's liveness endpoint /healthz; none: off."
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of the operator's Prometheus endpoint /metrics (docs/observability.md, "
        "'Operator metrics'); none: off.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level logged."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("namespaces", "image_pull_secrets", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("namespaces")
    @classmethod
    def _exact_names(cls, names: list[str]) -> list[str]:
        # kopf's namespace globs need the namespace list watched; the operator runs with
        # scanning off (no RBAC on namespaces), so only exact names are served.
        bad = [n for n in names if not _DNS_LABEL.match(n)]
        if bad:
            raise ValueError(f"expected exact namespace names (DNS labels), got {bad}")
        return names

    @model_validator(mode="after")
    def _client_certificate_pair(self) -> OperatorSettings:
        if (self.pipeline_tls_cert_file is None) != (self.pipeline_tls_key_file is None):
            raise ValueError(
                "pipeline_tls_cert_file and pipeline_tls_key_file go together: give both or neither"
            )
        if self.pipeline_tls_cert_file is not None and self.pipeline_tls_ca_file is None:
            raise ValueError(
                "a client certificate (pipeline_tls_cert_file) is for TLS: set "
                "pipeline_tls_ca_file too"
            )
        return self

    def secret_values(self) -> list[str]:
        """What must never reach a log, a status or an event: the pipelines' token and the
        password in prometheus_url."""
        found = [self.pipeline_token.get_secret_value()] if self.pipeline_token else []
        if self.prometheus_url:
            try:
                password = urlsplit(self.prometheus_url).password
            except ValueError:
                password = None
            found += [password] if password else []
        return found

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def engine_job_image(self) -> str:
        return self.engine_image or f"{self.image_registry}/heron-engine:{self.image_tag}"

    @property
    def training_job_image(self) -> str:
        return self.training_image or f"{self.image_registry}/heron-training:{self.image_tag}"

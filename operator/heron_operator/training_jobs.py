"""The Job of a TrainingRun: `python -m heron.training` in the training image, one per
generation, wrapped in `python3 -m heron_operator.job_report train`, which leaves the run's
numbers (report.json's) as the container's termination message.

In the pod: the dataset claim read-only at `dataset.mountPath`, the artifacts claim at
/artifacts (the results folder is /artifacts/<subPath>), the TAO specs as files under
/etc/heron/spec (a ConfigMap's key, or an inline spec from a pod annotation through the
downward API: both a projected volume), /tmp an emptyDir.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from typing import Any, Literal

from heron_operator import gpus, jobs
from heron_operator.job_report import TERMINATION_LOG
from heron_operator.settings import OperatorSettings
from heron_operator.training_spec import SpecSource, TrainingRunSpec

Json = dict[str, Any]
RUN_LABEL = "heron.dev/training-run"
GENERATION_LABEL = "heron.dev/generation"
ROLE_LABEL = "heron.dev/role"
MANAGED_BY = ("app.kubernetes.io/managed-by", "heron-operator")
ARTIFACTS_MOUNT = "/artifacts"
SPEC_MOUNT = "/etc/heron/spec"
SPEC_ANNOTATIONS = {"train": "heron.dev/tao-spec", "retrain": "heron.dev/retrain-spec"}
GPU_RESOURCE = "nvidia.com/gpu"
CONTAINER = "training"
_NAME_MAX = 63  # a Job's name is also its pods' `job-name` label value
_YAML_KEY = re.compile(r"^[A-Za-z_][\w]*:\s*(#.*)?$")  # `key:` opening a mapping: YAML only


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def run_label(name: str) -> str:
    """The TrainingRun's name as a label value (at most 63 characters: longer names are cut
    and keep a hash of the whole)."""
    return name if len(name) <= _NAME_MAX else f"{name[: _NAME_MAX - 7]}-{_digest(name)}"


def job_name(name: str, generation: int) -> str:
    """`<run>-g<generation>-train-<hash>`, a DNS label of at most 63 characters."""
    stem = f"{name}-g{generation}-train"[: _NAME_MAX - 7].rstrip("-.")
    return f"{stem}-{_digest(f'{name}/{generation}')}"


def results_folder(spec: TrainingRunSpec, name: str) -> str:
    """The results folder as the Job's container sees it."""
    return posixpath.join(ARTIFACTS_MOUNT, spec.results_path(name))


def spec_file(role: Literal["train", "retrain"], source: SpecSource) -> str:
    """Where a spec lies in the container; the suffix tells heron YAML from protobuf text."""
    if source.config_map_ref is not None:
        key = source.config_map_ref.key.lower()
        yaml = key.endswith((".yaml", ".yml"))
    else:
        lines = (source.inline or "").splitlines()
        yaml = any(_YAML_KEY.match(line) for line in lines)
    return posixpath.join(SPEC_MOUNT, role + (".yaml" if yaml else ".txt"))


# --- the command ---------------------------------------------------------------------------


def command(spec: TrainingRunSpec, name: str) -> list[str]:
    """job_report around `python -m heron.training` with the spec's steps (docs/training.md)."""
    results = results_folder(spec, name)
    # JSON log lines, as the services write: its `heron-step:` lines are JSON lines' messages,
    # which job_report and the TrainingRun controller read (job_report.step_of_line).
    training = [
        "-m", "heron.training", "-e", spec_file("train", spec.tao_spec), "-r", results,
        "--log-format", "json",
    ]  # fmt: skip
    if spec.gpu.count > 1:  # one process per GPU
        training = ["-m", "torch.distributed.run", f"--nproc-per-node={spec.gpu.count}", *training]
    if spec.gpu.count == 0:
        training += ["--device", "cpu"]
    if spec.epochs is not None:
        training += ["--epochs", str(spec.epochs)]
    training += _prune_options(spec) + _calibration_options(spec)
    report = posixpath.join(results, "report.json")
    return [
        "python3", "-m", "heron_operator.job_report", "train",
        "--termination-log", TERMINATION_LOG, "--report", report,
        "--", "python3", *training,
    ]  # fmt: skip


def _prune_options(spec: TrainingRunSpec) -> list[str]:
    prune = spec.prune
    if prune is None:
        return []
    options = [
        "--prune", "--pth", f"{prune.threshold:g}", "--normalizer", prune.normalizer,
        "--equalization", prune.equalization, "--granularity", str(prune.granularity),
        "--min-filters", str(prune.min_filters),
    ]  # fmt: skip
    if prune.retrain_spec is not None:
        options += ["--retrain-spec", spec_file("retrain", prune.retrain_spec)]
    return options


def _calibration_options(spec: TrainingRunSpec) -> list[str]:
    c = spec.calibration
    if not c.enabled:
        return []
    options = [
        "--calibrate", "--calibration-batch-size", str(c.batch_size),
        "--calibration-method", c.method,
    ]  # fmt: skip
    if c.batches is not None:
        options += ["--calibration-batches", str(c.batches)]
    if c.percentile is not None:
        options += ["--calibration-percentile", f"{c.percentile:g}"]
    if c.images:
        options += ["--calibration-images", posixpath.join(spec.dataset.mount_path, c.images)]
    return options


# --- the manifest ----------------------------------------------------------------------------


def labels(name: str, generation: int) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "heron-training",
        "app.kubernetes.io/component": "training-run",
        MANAGED_BY[0]: MANAGED_BY[1],
        RUN_LABEL: run_label(name),
        GENERATION_LABEL: str(generation),
        ROLE_LABEL: "train",
    }


def manifest(run: Json, spec: TrainingRunSpec, settings: OperatorSettings) -> Json:
    """The batch/v1 Job of the TrainingRun `run` (owner reference and namespace are added by
    kopf.adopt)."""
    meta = run["metadata"]
    name, generation = meta["name"], int(meta.get("generation", 1))
    job_labels = labels(name, generation)
    volumes, mounts = _volumes(spec)
    container: Json = {
        "name": CONTAINER,
        "image": spec.image or settings.training_job_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": command(spec, name),
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": _resources(spec, settings),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": jobs.container_security(),
        "volumeMounts": mounts,
    }
    pod_spec: Json = {
        "restartPolicy": "Never",
        **jobs.pod_isolation(),
        "securityContext": jobs.pod_security(settings),
        "containers": [container],
        "volumes": volumes,
        **_placement(spec),
    }
    if settings.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in settings.image_pull_secrets]
    job_spec: Json = {
        "backoffLimit": spec.backoff_limit,
        "ttlSecondsAfterFinished": settings.job_ttl_s,
        "template": {
            "metadata": {"labels": job_labels, "annotations": _inline_specs(spec)},
            "spec": pod_spec,
        },
    }
    if spec.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(name, generation), "labels": job_labels},
        "spec": job_spec,
    }


def _specs(spec: TrainingRunSpec) -> list[tuple[Literal["train", "retrain"], SpecSource]]:
    found: list[tuple[Literal["train", "retrain"], SpecSource]] = [("train", spec.tao_spec)]
    if spec.prune is not None and spec.prune.retrain_spec is not None:
        found.append(("retrain", spec.prune.retrain_spec))
    return found


def _inline_specs(spec: TrainingRunSpec) -> dict[str, str]:
    """Inline specs ride in pod annotations, which the downward API turns into files."""
    return {SPEC_ANNOTATIONS[role]: s.inline for role, s in _specs(spec) if s.inline is not None}


def _volumes(spec: TrainingRunSpec) -> tuple[list[Json], list[Json]]:
    sources: list[Json] = []
    for role, source in _specs(spec):
        path = posixpath.basename(spec_file(role, source))
        ref = source.config_map_ref
        if ref is not None:
            sources.append(
                {"configMap": {"name": ref.name, "items": [{"key": ref.key, "path": path}]}}
            )
        else:
            field_path = f"metadata.annotations['{SPEC_ANNOTATIONS[role]}']"
            sources.append(
                {"downwardAPI": {"items": [{"path": path, "fieldRef": {"fieldPath": field_path}}]}}
            )
    volumes = [
        {"name": "dataset", "persistentVolumeClaim": {"claimName": spec.dataset.claim_name,
                                                      "readOnly": True}},
        {"name": "artifacts", "persistentVolumeClaim": {"claimName": spec.artifacts.claim_name}},
        {"name": "spec", "projected": {"sources": sources}},
        {"name": "tmp", "emptyDir": {}},
    ]  # fmt: skip
    dataset_mount: Json = {"name": "dataset", "mountPath": spec.dataset.mount_path,
                           "readOnly": True}  # fmt: skip
    if spec.dataset.sub_path:
        dataset_mount["subPath"] = spec.dataset.sub_path
    mounts = [
        dataset_mount,
        {"name": "artifacts", "mountPath": ARTIFACTS_MOUNT},
        {"name": "spec", "mountPath": SPEC_MOUNT, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    return volumes, mounts


def _resources(spec: TrainingRunSpec, settings: OperatorSettings) -> Json:
    """The spec's requests and limits (the operator's defaults without them), and the GPUs."""
    given = spec.resources
    if given is None:
        requests: Json = {"cpu": settings.job_cpu, "memory": settings.job_memory}
        limits: Json = {"memory": settings.job_memory}
    else:
        requests, limits = dict(given.requests), dict(given.limits)
    if spec.gpu.count:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = spec.gpu.count
    return {"requests": requests, "limits": limits}


def _placement(spec: TrainingRunSpec) -> Json:
    """GPU pods tolerate the GPU taint; `gpu.products` picks the nodes by their product."""
    if not spec.gpu.count:
        return {}
    placement: Json = {
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    }
    if spec.gpu.products:
        term = {"key": gpus.PRODUCT_LABEL, "operator": "In", "values": list(spec.gpu.products)}
        required = {"nodeSelectorTerms": [{"matchExpressions": [term]}]}
        placement["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}
        }
    return placement

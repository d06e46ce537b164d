"""The Jobs of an EngineBuild: the INT8 gate on a CPU node, one TensorRT plan build per GPU
product on a node of that product, and the TensorRT-RTX plan built ahead of time on a CPU node.

Every Job runs the engine image (images/engine/Dockerfile) with the model volume (the
EngineBuild's claim) at /models, wrapped in `python3 -m heron_operator.job_report`, which leaves
the command's result as the container's termination message. Names are deterministic (one
Job per build, generation, role and product), so creating one twice is a 409, never a
duplicate.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Literal

from heron_operator import gpus
from heron_operator.job_report import TERMINATION_LOG
from heron_operator.settings import OperatorSettings
from heron_operator.spec import EngineBuildSpec

Role = Literal["gate", "gpu", "rtx", "onnx"]

MODELS_MOUNT = "/models"
BUILD_LABEL = "heron.dev/engine-build"
GENERATION_LABEL = "heron.dev/generation"
ROLE_LABEL = "heron.dev/role"
PRODUCT_ANNOTATION = "heron.dev/gpu-product"
GPU_RESOURCE = "nvidia.com/gpu"
RTX_PRODUCT = "TensorRT-RTX"  # status.builds[].product of the CPU-built TensorRT-RTX plan
RTX_MODEL_SUFFIX = "_rtx"  # TensorRT-RTX plans need the RTX runtime: a model of their own
ONNX_PRODUCT = "ONNX Runtime"  # status.builds[].product of the model published for ONNX Runtime
ONNX_MODEL_SUFFIX = "_onnx"  # as `heron build-engine` names its onnxruntime model
CPU_INT8_FILE = "model.int8.u8s8.onnx"  # what `heron calibrate` writes for ONNX Runtime
INT8_WORK = "heron-int8"  # beside the ONNX: <dir>/heron-int8/<build>-g<generation>/
QDQ_FILE = "model.int8.qdq.onnx"  # what `heron calibrate` writes for TensorRT
ARTIFACTS_MOUNT = "/artifacts"  # a TrainingRun's claim, when it is not the repository's
_NAME_MAX = 63  # a Job's name is also its pods' `job-name` label value


@dataclass(frozen=True)
class JobTarget:
    role: Role
    product: str  # the GPU product (label value), or RTX_PRODUCT
    name: str


def job_name(build: str, generation: int, role: Role, product: str = "") -> str:
    """`<build>-g<gen>-<role>[-<product slug>]-<hash>`, a DNS label of at most 63 characters;
    the hash keeps products that slug alike (`A10` and `a10`) apart."""
    digest = hashlib.sha256(f"{build}/{generation}/{role}/{product}".encode()).hexdigest()[:6]
    slug = re.sub(r"[^a-z0-9]+", "-", product.lower()).strip("-")
    stem = "-".join(part for part in (build, f"g{generation}", role, slug) if part)
    stem = stem[: _NAME_MAX - len(digest) - 1].rstrip("-")
    return f"{stem}-{digest}"


def targets(
    build: str, generation: int, products: list[str], *, rtx: bool, onnx: bool
) -> list[JobTarget]:
    found = [JobTarget("gpu", p, job_name(build, generation, "gpu", p)) for p in products]
    if rtx:
        found.append(JobTarget("rtx", RTX_PRODUCT, job_name(build, generation, "rtx")))
    if onnx:
        found.append(JobTarget("onnx", ONNX_PRODUCT, job_name(build, generation, "onnx")))
    return found


# --- files: where the Jobs find the model --------------------------------------------------


@dataclass(frozen=True)
class ModelFiles:
    """The model's files as the Jobs' containers see them."""

    onnx: str  # the FP32 ONNX
    cache: str | None  # a TensorRT calibration cache (INT8)
    qdq: str | None  # the INT8 Q/DQ model (TensorRT-RTX has no implicit INT8)
    work: str | None  # where the gate Job calibrates (INT8 from an ONNX file)
    artifacts_claim: str | None = None  # a second claim, at ARTIFACTS_MOUNT


def files_from_spec(spec: EngineBuildSpec, build: str, generation: int) -> ModelFiles:
    """`model.onnx` (+ `calibrationCache`), absolute paths on the model volume (the spec
    checks that); INT8 is calibrated and gated by the gate Job into
    `<the ONNX's folder>/heron-int8/<build>-g<generation>/`."""
    onnx = spec.model.onnx or ""
    work = posixpath.join(posixpath.dirname(onnx), INT8_WORK, f"{build}-g{generation}")
    return ModelFiles(onnx, spec.model.calibration_cache, posixpath.join(work, QDQ_FILE), work)


def files_from_training_run(spec: EngineBuildSpec, artifacts: dict[str, Any]) -> ModelFiles:
    """A TrainingRun's `status.artifacts` (paths relative to its claim): its claim at /models
    when it is the repository's, else at /artifacts. `heron calibrate` wrote the Q/DQ model
    beside the calibration cache."""
    claim = str(artifacts.get("claimName") or spec.model_repository.claim_name)
    same = claim == spec.model_repository.claim_name
    root = MODELS_MOUNT if same else ARTIFACTS_MOUNT
    onnx = posixpath.join(root, str(artifacts["onnx"]))
    cache = artifacts.get("calibrationCache")
    cache_path = posixpath.join(root, str(cache)) if cache else None
    qdq = posixpath.join(posixpath.dirname(cache_path), QDQ_FILE) if cache_path else None
    return ModelFiles(onnx, cache_path, qdq, None, None if same else claim)


def repository(spec: EngineBuildSpec) -> str:
    sub = spec.model_repository.sub_path
    return posixpath.join(MODELS_MOUNT, sub) if sub else MODELS_MOUNT


def relative_to_repository(spec: EngineBuildSpec, path: str) -> str:
    """A path the Job reports, as the repository sees it (`detector/1733600000/model_sm86.plan`)."""
    root = repository(spec).rstrip("/") + "/"
    return path[len(root) :] if path.startswith(root) else path


# --- commands ------------------------------------------------------------------------------


def _wrapped(kind: Literal["build", "gate"], extra: list[str], command: list[str]) -> list[str]:
    return [
        "python3", "-m", "heron_operator.job_report", kind,
        "--termination-log", TERMINATION_LOG, *extra, "--", *command,
    ]  # fmt: skip


def gate_command(
    spec: EngineBuildSpec, files: ModelFiles, *, images: str, eval_data: str
) -> list[str]:
    """`heron calibrate` with the accuracy gate (docs/engine.md): INT8 Q/DQ models and a
    calibration cache into the work folder, exit 1 when INT8 loses more than maxApDrop.
    `images` and `eval_data` are the spec's accuracyGate.calibrationImages and evalData."""
    work = files.work or posixpath.dirname(files.onnx)
    report = posixpath.join(work, "gate.json")
    points = f"{spec.accuracy_gate.max_ap_drop * 100:g}"  # the CLI's unit: mAP points
    command = [
        "heron", "calibrate",
        "--model", files.onnx,
        "--images", images,
        "--output", work,
        "--eval-data", eval_data,
        "--max-ap-drop", points,
        "--json", report,
    ]  # fmt: skip
    return _wrapped("gate", ["--report", report], command)


def build_command(
    spec: EngineBuildSpec,
    files: ModelFiles,
    *,
    version: int,
    target: JobTarget,
    rtx_targets: list[str],
) -> list[str]:
    """`heron build-engine` for one product (TensorRT, on that GPU) or TensorRT-RTX (CPU).

    INT8: TensorRT takes the FP32 ONNX with the calibration cache when there is one (TAO's and
    DeepStream's way), else the Q/DQ model; TensorRT-RTX always the Q/DQ model."""
    if target.role == "onnx":
        return _wrapped("build", [], onnx_command(spec, files, version))
    rtx = target.role == "rtx"
    onnx, cache = files.onnx, None
    if spec.precision == "INT8":
        if rtx or files.cache is None:
            onnx = files.qdq or files.onnx
        else:
            cache = files.cache
    command = [
        "heron", "build-engine",
        "--onnx", onnx,
        "--precision", spec.precision.lower(),
        "--builder", "tensorrt_rtx" if rtx else "tensorrt",
        "--min-batch", str(spec.batch.min),
        "--opt-batch", str(spec.batch.opt),
        "--max-batch", str(spec.batch.max),
        "--model-name", spec.model_name + (RTX_MODEL_SUFFIX if rtx else ""),
        "--version", str(version),
        "--output", repository(spec),
    ]  # fmt: skip
    if cache is not None:
        command += ["--calib-cache", cache]
    if rtx and rtx_targets:
        command += ["--targets", ",".join(rtx_targets)]
    return _wrapped("build", [], command)


def onnx_command(spec: EngineBuildSpec, files: ModelFiles, version: int) -> list[str]:
    """`heron publish-onnx`: the model as version `version` of `<modelName>_onnx`. INT8 is the
    U8S8 model `heron calibrate` wrote beside the Q/DQ one (ONNX Runtime on CPUs runs uint8
    activations); FP32 and FP16 the FP32 ONNX (ONNX Runtime on CPUs has no FP16 kernels to gain
    from)."""
    onnx = files.onnx
    if spec.precision == "INT8" and files.qdq:
        onnx = posixpath.join(posixpath.dirname(files.qdq), CPU_INT8_FILE)
    return [
        "heron", "publish-onnx",
        "--onnx", onnx,
        "--output", repository(spec),
        "--model-name", spec.model_name + ONNX_MODEL_SUFFIX,
        "--version", str(version),
        "--max-batch", str(spec.batch.max),
    ]  # fmt: skip


# --- manifests -----------------------------------------------------------------------------


def container_security() -> dict[str, Any]:
    """The "restricted" Pod Security Standard, as the chart's pods run, with a read-only root
    (a new dict each time: a manifest is the caller's to change)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(settings: OperatorSettings) -> dict[str, Any]:
    """The Jobs' pods run as the images' user; the volume's files belong to `fs_group`."""
    return {
        "runAsNonRoot": True,
        "runAsUser": settings.run_as_user,
        "runAsGroup": settings.run_as_group,
        "fsGroup": settings.fs_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_isolation() -> dict[str, Any]:
    """What a Job's pod is not given: the namespace's service-account token (a Job calls no
    API) and the Services' addresses as environment variables."""
    return {"automountServiceAccountToken": False, "enableServiceLinks": False}


def manifest(
    *,
    name: str,
    role: Role,
    product: str,
    command: list[str],
    build: dict[str, Any],
    spec: EngineBuildSpec,
    files: ModelFiles,
    settings: OperatorSettings,
) -> dict[str, Any]:
    """A batch/v1 Job (owner reference and namespace are added by kopf.adopt)."""
    meta = build["metadata"]
    labels = {
        "app.kubernetes.io/name": "heron-engine",
        "app.kubernetes.io/component": "engine-build",
        "app.kubernetes.io/managed-by": "heron-operator",
        BUILD_LABEL: meta["name"],
        GENERATION_LABEL: str(meta.get("generation", 1)),
        ROLE_LABEL: role,
    }
    gpu = role == "gpu"
    resources: dict[str, Any] = {
        "requests": {"cpu": settings.job_cpu, "memory": settings.job_memory},
        "limits": {"memory": settings.job_memory},
    }
    if gpu:
        resources["requests"][GPU_RESOURCE] = 1
        resources["limits"][GPU_RESOURCE] = 1
    container: dict[str, Any] = {
        "name": "engine",
        "image": spec.image or settings.engine_job_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": command,
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": resources,
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "models", "mountPath": MODELS_MOUNT},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    volumes: list[dict[str, Any]] = [
        {
            "name": "models",
            "persistentVolumeClaim": {"claimName": spec.model_repository.claim_name},
        },
        {"name": "tmp", "emptyDir": {}},
    ]
    if files.artifacts_claim:
        container["volumeMounts"].append(
            {"name": "artifacts", "mountPath": ARTIFACTS_MOUNT, "readOnly": True}
        )
        volumes.append(
            {"name": "artifacts", "persistentVolumeClaim": {"claimName": files.artifacts_claim,
                                                            "readOnly": True}}
        )  # fmt: skip
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        **pod_isolation(),
        "securityContext": pod_security(settings),
        "containers": [container],
        "volumes": volumes,
    }
    if gpu:
        pod_spec["nodeSelector"] = {gpus.PRODUCT_LABEL: product}
        pod_spec["tolerations"] = [
            {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
        ]
    if settings.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in settings.image_pull_secrets]
    deadline = settings.gate_timeout_s if role == "gate" else settings.build_timeout_s
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {PRODUCT_ANNOTATION: product} if product else {},
        },
        "spec": {
            "backoffLimit": settings.backoff_limit,
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": settings.job_ttl_s,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


# --- reading a Job's state -------------------------------------------------------------------

JobPhase = Literal["Pending", "Running", "Succeeded", "Failed"]


def phase(job: dict[str, Any]) -> JobPhase:
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return "Succeeded" if condition["type"] == "Complete" else "Failed"
    if status.get("succeeded"):
        return "Succeeded"
    if status.get("active") or status.get("startTime"):
        return "Running"
    return "Pending"


def failure_message(job: dict[str, Any]) -> str:
    """The Job controller's reason a Job failed (BackoffLimitExceeded, DeadlineExceeded...)."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return f"{condition.get('reason', 'Failed')}: {condition.get('message', '')}".strip(
                ": "
            )
    return "the Job failed"

"""The TrainingRun controller: its spec model (the CRD's fields and CEL rules), its Job, the
decisions of a step, the `train` mode of job_report, and end to end the real kopf operator
against the API emulator with the node agent running the real `python -m heron.training`."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from heron_operator.job_report import STEP_PREFIX, JobReport, main
from heron_operator.kube import ApiError as ApiServerError
from heron_operator.kube import ConflictError, Kube
from heron_operator.settings import OperatorSettings
from heron_operator.steps import Context
from heron_operator.training_jobs import (
    RUN_LABEL,
    command,
    job_name,
    manifest,
    run_label,
    spec_file,
)
from heron_operator.training_reconcile import Observed, create_job, decide, step_of
from heron_operator.training_spec import SpecSource, TrainingRunSpec
from pydantic import BaseModel, ValidationError

from tests.operator.conftest import EVENTS, JOBS, wait_for
from tests.operator.node_agent import NodeAgent
from tests.support.kube_emulator import ApiError, KubeClient
from tests.support.kube_schemas import crd_schemas_from_crds, validate
from tests.training import conftest as training_conftest
from tests.training.test_job import TINY_SPEC

Json = dict[str, Any]
# The training tests' fixture `kitti16` (16 real images, converted and split), by this name.
training_data = training_conftest.kitti16
CHART = Path(__file__).parents[2] / "charts" / "heron"
CRD = yaml.safe_load((CHART / "crds" / "trainingruns.heron.dev.yaml").read_text())
KUBERNETES = "1.33"
RUNS = "/apis/heron.dev/v1alpha1/namespaces/{ns}/trainingruns"
CONFIG_MAPS = "/api/v1/namespaces/{ns}/configmaps"
SETTINGS = OperatorSettings(image_registry="registry.local", image_tag="9.9")
MINIMAL: Json = {
    "taoSpec": {"inline": "random_seed: 42\n"},
    "dataset": {"claimName": "facemask-data"},
    "artifacts": {"claimName": "facemask-models"},
}


def spec_with(**changes: Any) -> Json:
    return {**MINIMAL, **changes}


def run_body(name: str, spec: Json, generation: int = 1, status: Json | None = None) -> Json:
    meta = {"name": name, "namespace": "video", "generation": generation, "uid": "u-1"}
    return {"metadata": meta, "spec": spec, "status": status or {}}


# --- the spec: the CRD's fields, defaults and CEL rules ----------------------------------------


def test_a_minimal_spec_gets_the_crds_defaults() -> None:
    spec = TrainingRunSpec.model_validate(MINIMAL)
    assert spec.dataset.mount_path == "/data" and spec.dataset.sub_path == ""
    assert spec.results_path("facemask") == "trainingruns/facemask"
    assert (spec.calibration.enabled, spec.calibration.batches) == (True, None)
    assert (spec.calibration.batch_size, spec.calibration.method) == (8, "auto")
    assert (spec.gpu.count, spec.gpu.products) == (1, [])
    assert (spec.backoff_limit, spec.prune, spec.epochs) == (0, None, None)
    prune = TrainingRunSpec.model_validate(spec_with(prune={})).prune
    assert prune is not None and (prune.threshold, prune.normalizer) == (0.1, "max")
    assert (prune.equalization, prune.granularity, prune.min_filters) == ("union", 8, 16)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # CEL: exactly one of inline and configMapRef (taoSpec, prune.retrainSpec)
        ({"taoSpec": {}}, "give exactly one of inline and configMapRef"),
        (
            {"taoSpec": {"inline": "x", "configMapRef": {"name": "spec"}}},
            "give exactly one of inline and configMapRef",
        ),
        ({"prune": {"retrainSpec": {}}}, "give exactly one of inline and configMapRef"),
        # CEL: no '..' in a subPath; the pattern: relative
        ({"dataset": {"claimName": "d", "subPath": "a/../b"}}, "'..' segment"),
        ({"artifacts": {"claimName": "a", "subPath": ".."}}, "'..' segment"),
        ({"artifacts": {"claimName": "a", "subPath": "/abs"}}, "expected a relative path"),
        ({"calibration": {"images": "../x"}}, "'..' segment"),
        # CEL: percentile only with method percentile
        ({"calibration": {"percentile": 99.9}}, "percentile is only read with method percentile"),
        # CEL: products need count > 0
        ({"gpu": {"count": 0, "products": ["NVIDIA-A10"]}}, "products need count above 0"),
        # schema: types, ranges, enums, patterns, unknown fields
        ({"epochs": -1}, "greater than or equal to 0"),
        ({"epochs": 10001}, "less than or equal to 10000"),
        ({"prune": {"threshold": 1.5}}, "less than or equal to 1"),
        ({"prune": {"normalizer": "L1"}}, "'max' or 'L2'"),
        ({"calibration": {"method": "kl"}}, "'auto', 'entropy', 'percentile' or 'minmax'"),
        ({"calibration": {"method": "percentile", "percentile": 50}}, "greater than 50"),
        ({"calibration": {"batchSize": 257}}, "less than or equal to 256"),
        ({"gpu": {"products": ["NVIDIA A10"]}}, "expected a label value"),
        ({"gpu": {"products": ["A", "A"]}}, "distinct products"),
        ({"dataset": {"claimName": "Data"}}, "expected a DNS name"),
        ({"dataset": {"claimName": "d", "mountPath": "data"}}, "should match pattern"),
        ({"taoSpec": {"configMapRef": {"name": "s", "key": "a/b"}}}, "a ConfigMap key"),
        ({"resources": {"limits": {"memory": "lots"}}}, "a quantity"),
        ({"backoffLimit": 11}, "less than or equal to 10"),
        ({"activeDeadlineSeconds": 59}, "greater than or equal to 60"),
        ({"epochz": 3}, "Extra inputs are not permitted"),
        ({"dataset": None}, "valid dictionary"),
    ],
)
def test_the_crds_rules_refuse_a_bad_spec_naming_the_field(changes: Json, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainingRunSpec.model_validate(spec_with(**changes))


def test_a_full_spec_reads_as_the_crd_example_writes_it() -> None:
    spec = TrainingRunSpec.model_validate(
        spec_with(
            taoSpec={"configMapRef": {"name": "facemask-spec"}},
            prune={"threshold": 0.2, "retrainSpec": {"inline": "model_config {}"}},
            calibration={"method": "percentile", "percentile": 99.99, "images": "kitti/images"},
            gpu={"count": 2, "products": ["NVIDIA-H100-80GB-HBM3"]},
            resources={"requests": {"cpu": "8", "memory": "16Gi"}, "limits": {"memory": 2**35}},
            epochs=100,
            activeDeadlineSeconds=7200,
        )
    )
    assert spec.tao_spec.config_map_ref is not None
    assert spec.tao_spec.config_map_ref.key == "spec.txt"
    assert spec.resources is not None and spec.resources.limits == {"memory": 2**35}


def crd_spec() -> Json:
    schema: Json = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return dict(schema["properties"]["spec"])


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a field typed `Model` or `Model | None`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = inner[0] if len(inner) == 1 else None
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation if is_model else None


def fields_of(model: type[BaseModel]) -> Json:
    """The model's fields by alias (the CRD's names), nested models as dicts of theirs."""
    out: Json = {}
    for name, info in model.model_fields.items():
        inner = nested_model(info.annotation)
        out[info.alias or name] = fields_of(inner) if inner else None
    return out


def schema_fields(schema: Json) -> Json:
    return {
        name: schema_fields(sub) if sub.get("type") == "object" and "properties" in sub else None
        for name, sub in schema["properties"].items()
    }


def test_the_model_has_the_crds_fields() -> None:
    """Every spec field of the CRD, no more: one home per setting."""
    assert fields_of(TrainingRunSpec) == schema_fields(crd_spec())


def test_the_models_defaults_are_the_crds() -> None:
    objects: Json = {"prune": {}, "calibration": {}, "gpu": {}}
    dumped = TrainingRunSpec.model_validate(spec_with(**objects)).model_dump(by_alias=True)
    for name, prop in crd_spec()["properties"].items():
        if "default" in prop and prop["default"] != {}:
            assert dumped[name] == prop["default"], name
        for field, sub in (prop.get("properties") or {}).items():
            if "default" in sub and isinstance(dumped.get(name), dict):
                assert dumped[name][field] == sub["default"], f"{name}.{field}"


def test_the_charts_example_is_a_valid_spec() -> None:
    example = yaml.safe_load((CHART / "examples" / "trainingrun.yaml").read_text())
    spec = TrainingRunSpec.model_validate(example["spec"])
    assert spec.gpu.products == ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H200"]


def crd_errors(status: Json) -> list[str]:
    """What the API server would refuse of a TrainingRun with this status."""
    body = {"apiVersion": "heron.dev/v1alpha1", "kind": "TrainingRun",
            "metadata": {"name": "facemask"}, "spec": MINIMAL, "status": status}  # fmt: skip
    return validate(body, KUBERNETES, crd_schemas=crd_schemas_from_crds([CRD]))


# --- the Job ---------------------------------------------------------------------------------


def job_of(name: str = "facemask", generation: int = 1, **changes: Any) -> Json:
    spec = TrainingRunSpec.model_validate(spec_with(**changes))
    return manifest(run_body(name, spec.model_dump(by_alias=True), generation), spec, SETTINGS)


def training_command(job: Json) -> list[str]:
    full: list[str] = job["spec"]["template"]["spec"]["containers"][0]["command"]
    return full[full.index("--") + 1 :]


def test_the_job_runs_the_training_entry_point_inside_job_report() -> None:
    job = job_of(epochs=3, gpu={"count": 0}, calibration={"enabled": False})
    full = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert full[: full.index("--")] == [
        "python3", "-m", "heron_operator.job_report", "train",
        "--termination-log", "/dev/termination-log",
        "--report", "/artifacts/trainingruns/facemask/report.json",
    ]  # fmt: skip
    assert training_command(job) == [
        "python3", "-m", "heron.training", "-e", "/etc/heron/spec/train.txt",
        "-r", "/artifacts/trainingruns/facemask", "--log-format", "json",
        "--device", "cpu", "--epochs", "3",
    ]  # fmt: skip


def test_prune_and_calibration_become_the_jobs_options() -> None:
    job = job_of(
        artifacts={"claimName": "m", "subPath": "runs/a"},
        dataset={"claimName": "d", "mountPath": "/mnt/data"},
        prune={"threshold": 0.25, "normalizer": "L2", "retrainSpec": {"inline": "a:\n  b: 1\n"}},
        calibration={
            "images": "kitti/images", "batches": 40, "method": "percentile", "percentile": 99.99,
        },
    )  # fmt: skip
    cmd = training_command(job)
    assert cmd[cmd.index("-r") + 1] == "/artifacts/runs/a"
    assert "--device" not in cmd  # a GPU: the default device
    options = cmd[cmd.index("--prune") :]
    assert options == [
        "--prune", "--pth", "0.25", "--normalizer", "L2", "--equalization", "union",
        "--granularity", "8", "--min-filters", "16",
        "--retrain-spec", "/etc/heron/spec/retrain.yaml",
        "--calibrate", "--calibration-batch-size", "8", "--calibration-method", "percentile",
        "--calibration-batches", "40", "--calibration-percentile", "99.99",
        "--calibration-images", "/mnt/data/kitti/images",
    ]  # fmt: skip


def test_several_gpus_train_under_torchrun() -> None:
    spec = TrainingRunSpec.model_validate(spec_with(gpu={"count": 4}))
    assert command(spec, "x")[command(spec, "x").index("--") + 1 :][:5] == [
        "python3", "-m", "torch.distributed.run", "--nproc-per-node=4", "-m",
    ]  # fmt: skip


def test_the_jobs_volumes_specs_and_placement() -> None:
    job = job_of(
        taoSpec={"configMapRef": {"name": "facemask-spec", "key": "spec.yaml"}},
        prune={"retrainSpec": {"inline": "model_config { load_graph: true }"}},
        dataset={"claimName": "facemask-data", "subPath": "v2", "mountPath": "/data"},
        gpu={"count": 2, "products": ["NVIDIA-A10", "NVIDIA-L4"]},
        resources={"requests": {"cpu": "8"}, "limits": {"memory": "32Gi"}},
        backoffLimit=2,
        activeDeadlineSeconds=7200,
        image="mine/training:1",
    )
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "mine/training:1"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dataset"]["persistentVolumeClaim"] == {
        "claimName": "facemask-data", "readOnly": True,
    }  # fmt: skip
    assert volumes["artifacts"]["persistentVolumeClaim"] == {"claimName": "facemask-models"}
    assert volumes["spec"]["projected"]["sources"] == [
        {"configMap": {"name": "facemask-spec", "items": [{"key": "spec.yaml",
                                                            "path": "train.yaml"}]}},
        {"downwardAPI": {"items": [{"path": "retrain.txt", "fieldRef": {
            "fieldPath": "metadata.annotations['heron.dev/retrain-spec']"}}]}},
    ]  # fmt: skip
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"heron.dev/retrain-spec": "model_config { load_graph: true }"}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["dataset"] == {"name": "dataset", "mountPath": "/data", "readOnly": True,
                                 "subPath": "v2"}  # fmt: skip
    assert mounts["artifacts"]["mountPath"] == "/artifacts"
    assert container["resources"] == {
        "requests": {"cpu": "8", "nvidia.com/gpu": 2},
        "limits": {"memory": "32Gi", "nvidia.com/gpu": 2},
    }
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-A10", "NVIDIA-L4"]}
    ]
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (2, 7200)
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_a_cpu_job_and_the_operators_defaults() -> None:
    job = job_of(gpu={"count": 0})
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.local/heron-training:9.9"
    given = OperatorSettings(training_image="elsewhere/training:2")
    run = run_body("x", MINIMAL)
    assert (
        manifest(run, TrainingRunSpec.model_validate(MINIMAL), given)["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]
        == "elsewhere/training:2"
    )
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"},
                                      "limits": {"memory": "4Gi"}}  # fmt: skip
    assert "affinity" not in pod and "tolerations" not in pod
    assert "activeDeadlineSeconds" not in job["spec"] and job["spec"]["backoffLimit"] == 0
    labels = job["metadata"]["labels"]
    assert labels[RUN_LABEL] == "facemask" and labels["heron.dev/generation"] == "1"
    assert labels["app.kubernetes.io/managed-by"] == "heron-operator"  # what the operator watches
    assert job["spec"]["template"]["metadata"]["annotations"] == {
        "heron.dev/tao-spec": "random_seed: 42\n"
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"gpu": {"count": 0}},
        {
            "taoSpec": {"configMapRef": {"name": "s"}},
            "prune": {"retrainSpec": {"inline": "x"}},
            "gpu": {"count": 2, "products": ["NVIDIA-A10"]},
            "resources": {"requests": {"cpu": 4}, "limits": {"memory": "8Gi"}},
            "activeDeadlineSeconds": 600,
            "dataset": {"claimName": "d", "subPath": "v1"},
        },
    ],
)
def test_the_job_is_a_valid_kubernetes_job(changes: Json) -> None:
    assert validate(job_of(**changes), KUBERNETES) == []


def test_names_fit_kubernetes_limits() -> None:
    long = "a" * 200
    assert len(job_name(long, 12)) <= 63 and job_name(long, 12) != job_name(long, 13)
    assert len(run_label(long)) <= 63 and run_label(long) != run_label(long[:-1] + "b")
    assert job_name("facemask", 2).startswith("facemask-g2-train-")


@pytest.mark.parametrize(
    ("source", "file"),
    [
        ({"inline": "random_seed: 42\nmodel_config {\n  arch: 'resnet'\n}\n"}, "train.txt"),
        ({"inline": "random_seed: 42\nmodel_config:\n  arch: resnet\n"}, "train.yaml"),
        ({"configMapRef": {"name": "s", "key": "spec.yml"}}, "train.yaml"),
        ({"configMapRef": {"name": "s"}}, "train.txt"),
    ],
)
def test_a_specs_file_says_protobuf_text_or_yaml(source: Json, file: str) -> None:
    assert spec_file("train", SpecSource.model_validate(source)) == f"/etc/heron/spec/{file}"


# --- deciding -----------------------------------------------------------------------------------

NOW = "2026-12-08T10:00:00Z"


def seen(job: Json | None = None, pods: list[Json] | None = None, **rest: Any) -> Observed:
    values: Json = {"report": None, "log_step": None, "missing": [], "now": NOW, **rest}
    return Observed(job, pods or [], **values)


def a_job(phase: str = "", **status: Any) -> Json:
    limit = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"}  # fmt: skip
    conditions = {"Succeeded": [{"type": "Complete", "status": "True"}], "Failed": [limit]}
    body: Json = {"startTime": "2026-12-08T09:00:00Z", "active": 1, **status}
    if phase:
        body["conditions"] = conditions[phase]
    return {"metadata": {"name": job_name("facemask", 1)}, "status": body}


def a_pod(phase: str, **status: Any) -> Json:
    return {"metadata": {"name": "facemask-pod"}, "status": {"phase": phase, **status}}


def decided(observed: Observed, status: Json | None = None, **changes: Any) -> Any:
    spec = TrainingRunSpec.model_validate(spec_with(**changes))
    body = run_body("facemask", spec.model_dump(by_alias=True), status=status)
    return decide(body, spec, observed, SETTINGS)


def conditions_of(status: Json) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_without_its_job_a_step_creates_it() -> None:
    d = decided(seen())
    assert d.create is not None and d.create["metadata"]["name"] == job_name("facemask", 1)
    assert d.status["phase"] == "Pending" and d.status["job"] == d.create["metadata"]["name"]
    assert conditions_of(d.status) == {"Trained": ("Unknown", "JobCreated"),
                                       "Ready": ("False", "JobCreated")}  # fmt: skip
    assert [e.reason for e in d.events] == ["JobCreated"]


def test_a_missing_config_map_holds_the_run_without_a_job() -> None:
    d = decided(seen(missing=["ConfigMap facemask-spec"]))
    assert d.create is None and d.status["phase"] == "Pending"
    assert d.status["message"] == "waiting for ConfigMap facemask-spec (the TAO spec)"
    assert conditions_of(d.status)["Trained"] == ("False", "WaitingForConfigMap")


def test_a_job_without_a_running_pod_is_pending_with_the_schedulers_reason() -> None:
    unschedulable = a_pod("Pending", conditions=[{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
    }])  # fmt: skip
    d = decided(seen(a_job(), [unschedulable]), {"job": "x", "phase": "Pending"})
    assert d.status["phase"] == "Pending" and d.create is None
    assert "Unschedulable 0/4 nodes are available" in d.status["message"]


def test_a_running_pod_makes_the_run_running_at_the_step_its_log_names() -> None:
    d = decided(seen(a_job(), [a_pod("Running")], log_step="Prune"), {"phase": "Pending"})
    assert (d.status["phase"], d.status["step"]) == ("Running", "Prune")
    assert d.status["startTime"] == "2026-12-08T09:00:00Z"
    assert d.status["message"].startswith("running step Prune")
    assert [(e.reason, e.message) for e in d.events] == [("StepStarted", "step Prune started")]
    # no step line in the log's tail: the step known stays, no event
    again = decided(seen(a_job(), [a_pod("Running")]), d.status)
    assert again.status == d.status and again.events == []
    # the pod has ended, the Job does not say so yet: still Running
    ended = decided(seen(a_job(), [a_pod("Succeeded")]), d.status)
    assert ended.status == d.status


def test_a_succeeded_job_fills_the_numbers_and_artifacts() -> None:
    train = {
        "ap": {"mask": 0.9, "no-mask": 0.7}, "mAP": 0.8,
        "int8": {"ap": {"mask": 0.89, "no-mask": 0.69}, "mAP": 0.79, "apDrop": 0.01,
                 "variants": []},
        "artifacts": {"checkpoint": "retrain/model.pt", "onnx": "model.onnx",
                      "calibrationCache": "int8/calibration.bin", "report": "report.json"},
    }  # fmt: skip
    report = JobReport(ok=True, exit_code=0, step="Calibrate", train=train)
    job = a_job("Succeeded", completionTime="2026-12-08T09:30:00Z")
    d = decided(seen(job, [], report=report), {"phase": "Running", "step": "Export"},
                artifacts={"claimName": "models", "subPath": "runs/fm"})  # fmt: skip
    s = d.status
    assert (s["phase"], s["step"], s["mAP"], s["ap"]) == ("Succeeded", "Calibrate", 0.8,
                                                         train["ap"])  # fmt: skip
    assert s["int8"] == {"ap": {"mask": 0.89, "no-mask": 0.69}, "mAP": 0.79, "apDrop": 0.01}
    assert s["artifacts"] == {
        "claimName": "models", "path": "runs/fm", "checkpoint": "runs/fm/retrain/model.pt",
        "onnx": "runs/fm/model.onnx", "calibrationCache": "runs/fm/int8/calibration.bin",
        "report": "runs/fm/report.json",
    }  # fmt: skip
    assert (s["startTime"], s["completionTime"]) == ("2026-12-08T09:00:00Z",
                                                     "2026-12-08T09:30:00Z")  # fmt: skip
    assert conditions_of(s) == {"Trained": ("True", "Trained"), "Ready": ("True", "Trained")}
    assert s["message"] == ("mAP 0.8000; INT8 loses 1.00 mAP points; ONNX runs/fm/model.onnx")


def test_a_failed_job_fails_the_run_with_its_last_line_and_step() -> None:
    tail = "heron-step: Train\nWARNING x\nerror: /data/split: no split here"
    report = JobReport(ok=False, exit_code=1, step="Train", message=tail)
    d = decided(seen(a_job("Failed"), [], report=report), {"phase": "Running"})
    assert (d.status["phase"], d.status["step"]) == ("Failed", "Train")
    assert d.status["message"] == (
        f"Job {job_name('facemask', 1)} failed in step Train: error: /data/split: no split here"
    )
    assert conditions_of(d.status)["Trained"] == ("False", "TrainingFailed")
    assert d.status["completionTime"] == NOW  # the emulated Job has no time: now
    # no termination message at all (killed at its deadline): the Job controller's reason
    killed = decided(seen(a_job("Failed"), [], report=JobReport(ok=None)), {"phase": "Running"})
    assert killed.status["message"].endswith(
        "BackoffLimitExceeded: Job has reached the specified backoff limit"
    )


def test_a_job_that_succeeded_without_numbers_fails_the_run() -> None:
    report = JobReport(ok=False, exit_code=0, message="report.json: cannot read it")
    d = decided(seen(a_job("Succeeded"), [], report=report), {"phase": "Running"})
    assert d.status["phase"] == "Failed"
    assert conditions_of(d.status)["Trained"] == ("False", "NoReport")


def test_every_status_a_step_writes_is_valid_under_the_crd() -> None:
    train = {"ap": {"mask": 0.5}, "mAP": 0.5, "int8": {"ap": {"mask": 0.4}, "mAP": 0.4,
             "apDrop": 0.1, "variants": [{"label": "x"}]},
             "artifacts": {"onnx": "model.onnx", "calibrationCache": None}}  # fmt: skip
    succeeded = JobReport(ok=True, exit_code=0, step="Export", train=train)
    failed = JobReport(ok=False, exit_code=1, step="Train", message="error: x")
    statuses = [
        decided(seen()).status,
        decided(seen(missing=["ConfigMap s"])).status,
        decided(seen(a_job(), [a_pod("Pending")])).status,
        decided(seen(a_job(), [a_pod("Running")], log_step="Train")).status,
        decided(seen(a_job("Succeeded"), [], report=succeeded), {"phase": "Running"}).status,
        decided(seen(a_job("Failed"), [], report=failed), {"phase": "Running"}).status,
    ]
    for status in statuses:
        assert crd_errors({"observedGeneration": 1, **status}) == [], status


def creating(error: Exception | None) -> str:
    """What creating a Job gives when the API server answers with `error` (None: created)."""

    class Jobs:
        async def create(self, *_: Any) -> Json:
            if error is not None:
                raise error
            return {}

    ctx = Context(cast(Kube, Jobs()), SETTINGS)
    return asyncio.run(create_job(ctx, "video", {"metadata": {"name": "j"}}))


def test_a_job_the_api_server_refuses_fails_the_run_and_a_409_is_fine() -> None:
    assert creating(None) == ""
    assert creating(ConflictError(409, "AlreadyExists", "exists")) == ""  # an earlier step's
    refused = ApiServerError(422, "Invalid", "metadata.annotations: Too long: must be 262144")
    assert creating(refused) == (
        "the API server refused Job j: metadata.annotations: Too long: must be 262144"
    )
    with pytest.raises(ApiServerError):  # not the Job's fault: kopf retries the step
        creating(ApiServerError(503, "ServiceUnavailable", "etcd is away"))


def test_a_jobs_event_steps_the_training_run_that_owns_it() -> None:
    import kopf
    from heron_operator.training_run import owner

    def meta(raw: Json) -> kopf.Meta:
        return kopf.Body(raw).metadata  # type: ignore[arg-type]

    # the whole name, from the owner reference: the label may hold a cut one
    ref = {"apiVersion": "heron.dev/v1alpha1", "kind": "TrainingRun", "name": "a" * 100}
    assert owner(meta({"metadata": {"name": "j", "ownerReferences": [ref]}})) == "a" * 100
    assert owner(meta({"metadata": {"name": "j"}})) is None


@pytest.mark.parametrize(
    ("log", "step"),
    [
        ("heron-step: Train\n...\nheron-step: Export\nINFO exported\n", "Export"),
        ("INFO nothing yet\n", None),
        ("heron-step: Dance\n", None),
        ("heron-step: Retrain\nINFO heron-step: Calibrate (quoted, not at a line start)\n",
         "Retrain"),
        # --log-format json: the step is a JSON log line's message
        ('{"level": "INFO", "message": "heron-step: Prune", "step": "Prune"}\n{"message": "x"}\n',
         "Prune"),
        ('heron-step: Train\n{"message": "quoted: heron-step: Export"}\n{"heron-step: Export\n',
         "Train"),
    ],
)  # fmt: skip
def test_the_step_is_the_newest_step_line_of_the_log(log: str, step: str | None) -> None:
    assert step_of(log) == step


# --- job_report train ------------------------------------------------------------------------


def report_of(tmp_path: Path, script: str, report: Json | None) -> tuple[int, JobReport]:
    path = tmp_path / "report.json"
    if report is not None:
        path.write_text(json.dumps(report))
    log = tmp_path / "termination-log"
    code = main(["train", "--termination-log", str(log), "--report", str(path), "--",
                 sys.executable, "-c", script])  # fmt: skip
    return code, JobReport.from_message(log.read_text())


def test_job_report_train_passes_the_reports_numbers_and_the_last_step(tmp_path: Path) -> None:
    script = f"print('{STEP_PREFIX}Train'); print('{STEP_PREFIX}Export'); print('done')"
    body = {"ap": {"a": 0.5}, "mAP": 0.5, "int8": None, "artifacts": {"onnx": "model.onnx"},
            "epochs": 3}  # fmt: skip
    code, report = report_of(tmp_path, script, body)
    assert code == 0 and report.ok is True and report.step == "Export"
    assert report.train == {"ap": {"a": 0.5}, "mAP": 0.5, "int8": None,
                            "artifacts": {"onnx": "model.onnx"}}  # fmt: skip


def test_job_report_train_ignores_a_stale_report_of_a_failed_run(tmp_path: Path) -> None:
    script = f"import sys; print('{STEP_PREFIX}Prune'); sys.exit('error: bad checkpoint')"
    code, report = report_of(tmp_path, script, {"mAP": 0.9})
    assert code == 1 and report.ok is False and report.train is None
    assert (report.step, report.message.splitlines()[-1]) == ("Prune", "error: bad checkpoint")
    (tmp_path / "none").mkdir()
    code, report = report_of(tmp_path / "none", "print('no report')", None)
    assert code == 0 and report.ok is False and "cannot read" in report.message


def test_job_report_train_reads_a_json_logging_jobs_steps_and_last_line(tmp_path: Path) -> None:
    lines = [
        {"level": "INFO", "message": f"{STEP_PREFIX}Train", "step": "Train"},
        {"level": "INFO", "message": "train: 1/2 steps", "epoch": 1, "loss": 0.5},
        {"level": "ERROR", "message": "error: /data/split: no split here"},
    ]
    script = "; ".join(f"print({json.dumps(json.dumps(line))})" for line in lines)
    code, report = report_of(tmp_path, script + "; raise SystemExit(1)", None)
    assert code == 1 and report.step == "Train"
    assert report.message.splitlines() == [
        f"{STEP_PREFIX}Train", "train: 1/2 steps", "error: /data/split: no split here",
    ]  # fmt: skip


def test_a_report_of_many_classes_still_fits_the_termination_message() -> None:
    many = {f"class-{i:03d}": 0.123456789 for i in range(300)}
    train = {"ap": many, "mAP": 0.5, "int8": {"ap": many, "mAP": 0.4, "apDrop": 0.1},
             "artifacts": {"onnx": "model.onnx"}}  # fmt: skip
    text = JobReport(ok=True, exit_code=0, train=train, message="x" * 5000).to_message()
    assert len(text.encode()) <= 4096
    back = JobReport.from_message(text).train
    assert back == {"mAP": 0.5, "int8": {"mAP": 0.4, "apDrop": 0.1},
                    "artifacts": {"onnx": "model.onnx"}}  # fmt: skip


# --- end to end: the real operator, the real training Job --------------------------------------


def run_of(kube: KubeClient, namespace: str, name: str) -> Json:
    return kube.get(f"{RUNS.format(ns=namespace)}/{name}")


def reasons(kube: KubeClient, namespace: str) -> list[str]:
    return [str(e.get("reason")) for e in kube.list(EVENTS.format(ns=namespace))]


def follow(
    kube: KubeClient, namespace: str, name: str, timeout: float = 120.0
) -> tuple[Json, list[tuple[str, str | None]]]:
    """Poll the run until it has finished; (the last object, every (phase, step) seen)."""
    seen_states: list[tuple[str, str | None]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run_of(kube, namespace, name).get("status") or {}
        state = (status.get("phase"), status.get("step"))
        if state[0] and (not seen_states or seen_states[-1] != state):
            seen_states.append(state)  # type: ignore[arg-type]
        if state[0] in ("Succeeded", "Failed"):
            return run_of(kube, namespace, name), seen_states
        time.sleep(0.05)
    raise AssertionError(f"the TrainingRun did not finish in {timeout} s: {seen_states}")


def training_run(name: str, **spec: Any) -> Json:
    return {"apiVersion": "heron.dev/v1alpha1", "kind": "TrainingRun",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


@pytest.mark.shared_data
@pytest.mark.usefixtures("running_operator")
def test_a_training_run_trains_exports_calibrates_and_feeds_an_engine_build(
    kube: KubeClient,
    namespace: str,
    agent: NodeAgent,
    training_data: Path,
    models: Path,
) -> None:
    agent.claims.update({"facemask-data": training_data, "models": models})
    spec = TINY_SPEC.replace('"split/*"', '"/data/split/*"').replace(
        '"kitti/images"', '"/data/kitti/images"'
    ).replace('ARCH_LINES', 'arch: "resnet" num_layers: 10')  # fmt: skip
    kube.create(CONFIG_MAPS.format(ns=namespace), {"metadata": {"name": "facemask-spec"},
                                                   "data": {"spec.txt": spec}})  # fmt: skip
    kube.create(RUNS.format(ns=namespace), training_run(
        "facemask", taoSpec={"configMapRef": {"name": "facemask-spec"}},
        dataset={"claimName": "facemask-data"}, artifacts={"claimName": "models"},
        epochs=1, calibration={"batches": 2, "batchSize": 4}, gpu={"count": 0},
    ))  # fmt: skip
    started = time.monotonic()
    run, states = follow(kube, namespace, "facemask")
    took = time.monotonic() - started
    status = run["status"]
    assert status["phase"] == "Succeeded", status
    phases = [p for i, (p, _) in enumerate(states) if i == 0 or states[i - 1][0] != p]
    assert phases == ["Pending", "Running", "Succeeded"], states
    assert ("Running", "Train") in states  # read from the pod's log while it trained
    assert status["step"] == "Calibrate"
    assert set(status["ap"]) == {"mask", "no-mask"} and 0 <= status["mAP"] <= 1
    assert set(status["int8"]) == {"ap", "mAP", "apDrop"} and -1 <= status["int8"]["apDrop"] <= 1
    folder = "trainingruns/facemask"
    assert status["artifacts"] == {
        "claimName": "models", "path": folder, "checkpoint": f"{folder}/model.pt",
        "onnx": f"{folder}/model.onnx", "calibrationCache": f"{folder}/int8/calibration.bin",
        "report": f"{folder}/report.json",
    }  # fmt: skip
    for key in ("checkpoint", "onnx", "calibrationCache", "report"):
        assert (models / status["artifacts"][key]).is_file(), key
    report = json.loads((models / folder / "report.json").read_text())
    assert report["mAP"] == status["mAP"] and report["int8"]["apDrop"] == status["int8"]["apDrop"]
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "Trained")
    assert status["startTime"] <= status["completionTime"]
    assert {"JobCreated", "StepStarted", "Running", "Trained"} <= set(reasons(kube, namespace))
    print(f"\nthe TrainingRun took {took:.1f} s from creation to Succeeded")

    # An EngineBuild of its model: the TrainingRun's reading is the INT8 gate, its files the input.
    kube.create(f"/apis/heron.dev/v1alpha1/namespaces/{namespace}/enginebuilds", {
        "apiVersion": "heron.dev/v1alpha1", "kind": "EngineBuild",
        "metadata": {"name": "facemask-int8"},
        "spec": {"model": {"fromTrainingRun": "facemask"}, "modelName": "facemask",
                 "precision": "INT8", "accuracyGate": {"maxApDrop": 1.0},
                 "gpuProducts": ["NVIDIA-A10"], "rtx": {"enabled": False},
                 "modelRepository": {"claimName": "models", "subPath": "triton"}},
    })  # fmt: skip
    builds = f"/apis/heron.dev/v1alpha1/namespaces/{namespace}/enginebuilds/facemask-int8"

    def built() -> Json | None:
        build = kube.get(builds)
        return (
            build if (build.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None
        )

    build = wait_for(built, "the EngineBuild of the TrainingRun's model", timeout=30)
    assert build["status"]["phase"] == "Succeeded", build["status"]
    assert build["status"]["gate"]["apDrop"] == pytest.approx(status["int8"]["apDrop"])
    gpu_job = next(j for j in kube.list(JOBS.format(ns=namespace))
                   if j["metadata"]["labels"].get("heron.dev/role") == "gpu")  # fmt: skip
    cmd = gpu_job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cmd[cmd.index("--onnx") + 1] == f"/models/{folder}/model.onnx"
    assert cmd[cmd.index("--calib-cache") + 1] == f"/models/{folder}/int8/calibration.bin"


@pytest.mark.usefixtures("running_operator")
def test_a_run_that_cannot_read_its_data_fails_and_deleting_it_deletes_its_job(
    kube: KubeClient, namespace: str, agent: NodeAgent, tmp_path: Path
) -> None:
    agent.claims.update({"no-data": tmp_path / "data", "results": tmp_path / "results"})
    spec = TINY_SPEC.replace('"split/*"', '"/data/split/*"').replace(
        '"kitti/images"', '"/data/kitti/images"'
    ).replace('ARCH_LINES', 'arch: "resnet" num_layers: 10')  # fmt: skip
    kube.create(RUNS.format(ns=namespace), training_run(
        "no-data", taoSpec={"inline": spec}, dataset={"claimName": "no-data"},
        artifacts={"claimName": "results"}, gpu={"count": 0},
    ))  # fmt: skip
    run, _ = follow(kube, namespace, "no-data", timeout=60)
    status = run["status"]
    assert (status["phase"], status["step"]) == ("Failed", "Train"), status
    job = status["job"]
    assert status["message"] == (
        f"Job {job} failed in step Train: error: /data/split/partitions.json: error: no split "
        "here (run `heron data split` first)"
    )  # the Job's last line, with the container's paths
    trained = {c["type"]: c for c in status["conditions"]}["Trained"]
    assert (trained["status"], trained["reason"]) == ("False", "TrainingFailed")
    events = kube.list(EVENTS.format(ns=namespace))
    assert any(e["reason"] == "TrainingFailed" and e["type"] == "Warning" for e in events)
    assert not (tmp_path / "results" / "trainingruns" / "no-data" / "report.json").exists()

    assert [j["metadata"]["name"] for j in kube.list(JOBS.format(ns=namespace))] == [job]
    kube.delete(f"{RUNS.format(ns=namespace)}/no-data")
    # The emulator has no garbage collector: the Job goes because the finalizer deletes it.
    wait_for(lambda: kube.list(JOBS.format(ns=namespace)) == [], "the Job to be deleted")
    wait_for(lambda: gone(lambda: run_of(kube, namespace, "no-data")), "the run to be deleted")
    assert "JobsDeleted" in reasons(kube, namespace)


def gone(get: Callable[[], Json]) -> bool:
    try:
        get()
    except ApiError as e:
        return e.status == 404
    return False

"""A test "node agent": the Job controller and the kubelet for the engine Jobs, over the API.

It watches the Jobs labelled `heron.dev/engine-build` and, for each new one, does what the
cluster would: a pod per attempt (up to `backoffLimit + 1`), on a node that matches the pod's
nodeSelector (none: the pod stays Pending, as an unschedulable one does), runs its container's
command as a local process, writes the pod's status with the terminated state and the
termination message (the file `terminationMessagePath` names; the log tail on failure, as
`FallbackToLogsOnError` says), and the Job's status (active, succeeded/failed, conditions).

The container's paths are mapped to local ones: the model volume (/models) to a folder, the
termination-message file to a temporary file, and back in the message. `python3` and `heron`
are the virtualenv's. What runs:
- the TensorRT-RTX Job: its real command (`job_report` + `heron build-engine --builder
  tensorrt_rtx`, a real plan on the CPU);
- the GPU Jobs: `job_report` for real, around `stand_in.py gpu` (no TensorRT here);
- the gate Job: `job_report` for real, around `stand_in.py gate` (the real `heron calibrate`,
  with scripted AP numbers);
- a TrainingRun's Job (labelled `heron.dev/training-run`): its real command, the real
  `python -m heron.training`, with its volumes made local: claims from `claims` (name →
  folder), the projected spec volume's ConfigMap keys and downward-API annotations written to
  files, emptyDirs as temporary folders. A process here cannot see the container's file
  tree, so quoted claim paths in those spec files (`"/data/split/*"`) are made local too. The
  container's output is its pod's log, line by line as it comes (`pod_log`, which the emulator
  serves as `pods/<name>/log`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import random
import string
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

Json = dict[str, Any]
STAND_IN = Path(__file__).with_name("stand_in.py")
BUILD_LABEL = "heron.dev/engine-build"
TRAINING_LABEL = "heron.dev/training-run"
MODELS_MOUNT = "/models"


@dataclass(frozen=True)
class BuildOutcome:
    """What a stand-in GPU build does: succeed, or exit with `exit_code` printing `error`."""

    exit_code: int = 0
    error: str = ""
    delay_s: float = 0.0


@dataclass
class Script:
    """The scripted results of one namespace's Jobs."""

    gate_drops: dict[str, float] = field(
        default_factory=lambda: {"TensorRT Q/DQ (S8S8)": 0.4, "ONNX Runtime CPU (U8S8)": 0.7}
    )
    gate_calibrates: bool = True  # False: only the numbers (no build will use the Q/DQ model)
    gpu: dict[str, BuildOutcome] = field(default_factory=dict)  # by product label value


@dataclass(frozen=True)
class Run:
    job: str
    namespace: str
    role: str
    command: list[str]
    exit_code: int
    message: str
    node: str | None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeAgent:
    def __init__(self, url: str, models: Path) -> None:
        self.url, self.models = url, models
        self.scripts: dict[str, Script] = {}
        self.runs: list[Run] = []
        self.claims: dict[str, Path] = {}  # PersistentVolumeClaim name -> local folder
        self.logs: dict[tuple[str, str], str] = {}  # (namespace, pod) -> its log so far
        self.errors: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._main, name="node-agent", daemon=True)
        self._started = threading.Event()
        self._seen: set[str] = set()
        self._bin = str(Path(sys.executable).parent)

    def __enter__(self) -> NodeAgent:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)

    def script(self, namespace: str) -> Script:
        return self.scripts.setdefault(namespace, Script())

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            self._started.set()
            async with aiohttp.ClientSession(self.url) as session:
                await asyncio.gather(
                    self._watch(session), self._watch(session, label=TRAINING_LABEL)
                )

        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(main())

    def pod_log(self, namespace: str, pod: str) -> str | None:
        """The pod's log so far (the emulator's `log_source`)."""
        return self.logs.get((namespace, pod))

    async def _watch(self, session: aiohttp.ClientSession, label: str = BUILD_LABEL) -> None:
        tasks: set[asyncio.Task[None]] = set()
        async with session.get("/apis/batch/v1/jobs", params={"labelSelector": label}) as r:
            listing = await r.json()
        for job in listing["items"]:
            self._start(session, job, tasks)
        since = listing["metadata"]["resourceVersion"]
        while True:
            params = {"watch": "true", "labelSelector": label, "resourceVersion": since,
                      "timeoutSeconds": "30"}  # fmt: skip
            async with session.get("/apis/batch/v1/jobs", params=params) as r:
                async for line in r.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    since = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] == "ADDED":
                        self._start(session, event["object"], tasks)

    def _start(
        self, session: aiohttp.ClientSession, job: Json, tasks: set[asyncio.Task[None]]
    ) -> None:
        uid = job["metadata"]["uid"]
        if uid in self._seen or (job.get("status") or {}).get("startTime"):
            return
        self._seen.add(uid)
        task = asyncio.create_task(self._run_job_logged(session, job))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run_job_logged(self, session: aiohttp.ClientSession, job: Json) -> None:
        try:
            await self._run_job(session, job)
        except Exception as e:  # a Job deleted while it ran: its status has nowhere to go
            self.errors.append(f"{job['metadata']['name']}: {e!r}")

    # -- the Job controller ----------------------------------------------------------------------

    async def _run_job(self, session: aiohttp.ClientSession, job: Json) -> None:
        meta, spec = job["metadata"], job["spec"]
        ns, name = meta["namespace"], meta["name"]
        jobs = f"/apis/batch/v1/namespaces/{ns}/jobs/{name}/status"
        await _patch(session, jobs, {"status": {"startTime": _now(), "active": 1}})
        node = await self._schedule(session, spec["template"]["spec"])
        for failed in range(int(spec.get("backoffLimit", 6)) + 1):
            code = await self._run_pod(session, job, node)
            if code == 0:
                complete = {"type": "Complete", "status": "True", "lastTransitionTime": _now()}
                await _patch(session, jobs, {"status": {
                    "active": 0, "succeeded": 1, "failed": failed or None,
                    "completionTime": _now(), "conditions": [complete],
                }})  # fmt: skip
                return
            await _patch(session, jobs, {"status": {"failed": failed + 1}})
        await _patch(session, jobs, {"status": {"active": 0, "conditions": [{
            "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit", "lastTransitionTime": _now(),
        }]}})  # fmt: skip

    async def _schedule(self, session: aiohttp.ClientSession, pod_spec: Json) -> str | None:
        selector: dict[str, str] = pod_spec.get("nodeSelector") or {}
        async with session.get("/api/v1/nodes") as r:
            nodes = (await r.json())["items"]
        wanted = _affinity_terms(pod_spec)
        for node in nodes:
            labels = node["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in selector.items()) and all(
                labels.get(t["key"]) in t.get("values", []) for t in wanted
            ):
                return str(node["metadata"]["name"])
        return None

    # -- the kubelet -------------------------------------------------------------------------------

    async def _run_pod(self, session: aiohttp.ClientSession, job: Json, node: str | None) -> int:
        meta = job["metadata"]
        ns, name = meta["namespace"], meta["name"]
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        labels = {**(job["spec"]["template"]["metadata"].get("labels") or {}),
                  "job-name": name, "batch.kubernetes.io/job-name": name,
                  "batch.kubernetes.io/controller-uid": meta["uid"]}  # fmt: skip
        pod = {
            "metadata": {"name": f"{name}-{suffix}", "labels": labels, "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": meta["uid"],
                "controller": True, "blockOwnerDeletion": True}]},
            "spec": {**job["spec"]["template"]["spec"], **({"nodeName": node} if node else {})},
        }  # fmt: skip
        pods = f"/api/v1/namespaces/{ns}/pods"
        async with session.post(pods, json=pod) as r:
            created = await r.json()
        status = f"{pods}/{created['metadata']['name']}/status"
        if node is None:  # unschedulable: Pending for good, as the scheduler leaves it
            await _patch(session, status, {"status": {"phase": "Pending"}})
            await asyncio.Event().wait()
        container = job["spec"]["template"]["spec"]["containers"][0]
        running = {"name": container["name"], "state": {"running": {"startedAt": _now()}}}
        await _patch(
            session, status, {"status": {"phase": "Running", "containerStatuses": [running]}}
        )
        code, message = await self._execute(
            job, container, session=session, pod=created["metadata"]["name"]
        )
        self.runs.append(Run(name, ns, meta["labels"].get("heron.dev/role", ""),
                             container["command"], code, message, node))  # fmt: skip
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                      "message": message, "finishedAt": _now()}  # fmt: skip
        await _patch(session, status, {"status": {
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [{"name": container["name"], "state": {"terminated": terminated}}],
        }})  # fmt: skip
        return code

    async def _execute(
        self, job: Json, container: Json, *, session: aiohttp.ClientSession, pod: str
    ) -> tuple[int, str]:
        meta = job["metadata"]
        role = meta["labels"].get("heron.dev/role", "")
        product = (meta.get("annotations") or {}).get("heron.dev/gpu-product", "")
        script = self.script(meta["namespace"])
        with tempfile.TemporaryDirectory() as tmp:
            termination = Path(tmp) / "termination-log"
            termination.touch()
            paths = {
                container["terminationMessagePath"]: str(termination),
                MODELS_MOUNT: str(self.models),
            }
            if role == "train":  # its own volumes, not the model volume
                del paths[MODELS_MOUNT]
                paths.update(await self._volumes(session, job, container, Path(tmp)))
            command = [_map(arg, paths) for arg in container["command"] + container.get("args", [])]
            delay = 0.0
            if role in ("gpu", "gate"):  # job_report for real, around a stand-in
                split = command.index("--")
                if role == "gpu":
                    outcome = script.gpu.get(product, BuildOutcome())
                    delay = outcome.delay_s
                    cc = await self._compute_capability(product)
                    options = [
                        "--exit-code",
                        str(outcome.exit_code),
                        "--error",
                        outcome.error,
                        "--cc",
                        cc,
                    ]
                else:
                    options = ["--drops", json.dumps(script.gate_drops)]
                    options += [] if script.gate_calibrates else ["--no-calibrate"]
                stand_in = [sys.executable, str(STAND_IN), role, *options, "--"]
                command = command[: split + 1] + stand_in + command[split + 1 :]
            env = {**os.environ}
            env.update({e["name"]: _map(e.get("value", ""), paths) for e in container["env"]})
            env.update(PATH=f"{self._bin}:{os.environ.get('PATH', '')}", HOME=tmp)
            await asyncio.sleep(delay)
            process = await asyncio.create_subprocess_exec(
                *command, cwd=tmp, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            output = await self._follow(process, (meta["namespace"], pod))
            code = await process.wait()
            message = termination.read_text()
            if (
                not message
                and code
                and container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
            ):
                message = output.decode(errors="replace")[-2048:]
            if role == "train":  # local paths back to the container's
                for container_path, local in paths.items():
                    message = message.replace(local, container_path)
            return code, message.replace(str(self.models), MODELS_MOUNT)

    async def _follow(self, process: asyncio.subprocess.Process, key: tuple[str, str]) -> bytes:
        """The process's output, kept line by line as the pod's log while it runs."""
        assert process.stdout is not None
        output = bytearray()
        self.logs[key] = ""
        async for line in process.stdout:
            output += line
            self.logs[key] += line.decode(errors="replace")
        return bytes(output)

    async def _volumes(
        self, session: aiohttp.ClientSession, job: Json, container: Json, tmp: Path
    ) -> dict[str, str]:
        """Container mount path -> local folder, for every volume the container mounts."""
        template = job["spec"]["template"]
        volumes = {v["name"]: v for v in template["spec"].get("volumes") or []}
        paths, claims, projected = {}, {}, []
        for mount in container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            local = tmp / "volumes" / mount["name"]
            if "persistentVolumeClaim" in volume:
                local = self.claims[volume["persistentVolumeClaim"]["claimName"]]
            elif "projected" in volume:
                await self._project(session, job, volume["projected"], local)
                projected.append(local)
            local = local / mount.get("subPath", "")
            local.mkdir(parents=True, exist_ok=True)
            paths[mount["mountPath"]] = str(local)
            if "persistentVolumeClaim" in volume:
                claims[mount["mountPath"]] = str(local)
        for file in (f for folder in projected for f in folder.iterdir()):
            text = file.read_text()
            for container_path, local_path in claims.items():
                text = text.replace(f'"{container_path}/', f'"{local_path}/')
            file.write_text(text)
        return paths

    async def _project(
        self, session: aiohttp.ClientSession, job: Json, projected: Json, folder: Path
    ) -> None:
        """A projected volume's files: ConfigMap keys, and downward-API pod annotations."""
        folder.mkdir(parents=True, exist_ok=True)
        annotations = job["spec"]["template"]["metadata"].get("annotations") or {}
        for source in projected["sources"]:
            if "configMap" in source:
                ref = source["configMap"]
                path = f"/api/v1/namespaces/{job['metadata']['namespace']}/configmaps/{ref['name']}"
                async with session.get(path) as r:
                    data = (await r.json()).get("data") or {}
                for item in ref["items"]:
                    (folder / item["path"]).write_text(data[item["key"]])
            for item in (source.get("downwardAPI") or {}).get("items") or []:
                key = item["fieldRef"]["fieldPath"].split("['", 1)[1].rstrip("']")
                (folder / item["path"]).write_text(annotations[key])

    async def _compute_capability(self, product: str) -> str:
        async with aiohttp.ClientSession(self.url) as session, session.get("/api/v1/nodes") as r:
            nodes = (await r.json())["items"]
        for node in nodes:
            labels = node["metadata"].get("labels") or {}
            if labels.get("nvidia.com/gpu.product") == product:
                major = labels.get("nvidia.com/gpu.compute.major", "8")
                return f"{major}.{labels.get('nvidia.com/gpu.compute.minor', '6')}"
        return "8.6"


def _affinity_terms(pod_spec: Json) -> list[Json]:
    """The `In` expressions of the pod's required node affinity (its first term)."""
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or [{}]
    return [e for e in terms[0].get("matchExpressions") or [] if e.get("operator") == "In"]


def _map(value: str, paths: dict[str, str]) -> str:
    for container_path, local in paths.items():
        if value == container_path or value.startswith(container_path + "/"):
            return local + value[len(container_path) :]
    return value


async def _patch(session: aiohttp.ClientSession, path: str, patch: Json) -> None:
    headers = {"Content-Type": "application/merge-patch+json"}
    async with session.patch(path, data=json.dumps(patch), headers=headers) as r:
        if r.status >= 400:
            raise RuntimeError(f"PATCH {path}: {r.status} {await r.text()}")

"""A real `tritonserver` for tests, from the `nvidia-pytriton` wheel, with a python-backend model.

The wheel (`pip install --no-deps nvidia-pytriton==0.7.0`) ships Triton 2.51 with only the
python backend (see ../shared/NOTES.md). `find_triton()` locates the binary, its libraries and the
python backend stub for this interpreter inside the installed `pytriton` package;
`TritonServer` starts it on free loopback ports, and `kill()` / `start()` keep those ports so
clients can reconnect. `write_onnx_model` writes a model repository entry whose `model.py` runs
ONNX Runtime on an ONNX file in the python backend (the wheel has no onnxruntime backend).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from heron.engine.python_model import MODEL_PY  # the model.py heron.engine publishes

from tests.support.redis_server import free_port

PYTRITON_PIN = "nvidia-pytriton==0.7.0"
_servers = itertools.count()


class TritonUnavailableError(FileNotFoundError):
    """The tritonserver of the nvidia-pytriton wheel is not installed here; says how to get it."""


@dataclass(frozen=True)
class TritonInstall:
    binary: Path
    python_backend: Path  # libtriton_python.so and triton_python_backend_utils.py
    stub: Path  # triton_python_backend_stub built for this interpreter's version
    libs: Path  # nvidia_pytriton.libs: the wheel's bundled shared libraries


def find_triton() -> TritonInstall:
    """The parts of the installed `pytriton` package, or TritonUnavailableError naming the gap."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonUnavailableError(
            f"the pytriton package is not installed: `pip install --no-deps {PYTRITON_PIN}`"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    server = package / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    install = TritonInstall(
        binary=server / "bin" / "tritonserver",
        python_backend=server / "backends" / "python",
        stub=server / "python_backend_stubs" / version / "triton_python_backend_stub",
        libs=package.parent / "nvidia_pytriton.libs",
    )
    for name in ("binary", "python_backend", "stub", "libs"):
        if not getattr(install, name).exists():
            raise TritonUnavailableError(
                f"{PYTRITON_PIN} is incomplete: {name} {getattr(install, name)} does not exist"
            )
    return install


class TritonServer:
    """One tritonserver process over `repository`; ports stay fixed across restarts.
    `extra_args` go on its command line, e.g. `--model-control-mode=explicit`."""

    def __init__(
        self,
        repository: Path,
        workdir: Path,
        install: TritonInstall | None = None,
        extra_args: Sequence[str] = (),
    ):
        self.install = install or find_triton()
        self.extra_args = list(extra_args)
        self.repository = repository
        self.workdir = workdir
        self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        self.backends = self._backend_dir(workdir / "backends")
        self.log_path = workdir / "tritonserver.log"
        # The python backend's own shared-memory regions, named so they can be removed after a
        # SIGKILL (a killed server leaves them in /dev/shm).
        self.shm_prefix = f"heron_triton_{os.getpid()}_{next(_servers)}_"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def _backend_dir(self, root: Path) -> Path:
        """The python backend with the stub for this interpreter beside it, as Triton wants."""
        target = root / "python"
        if not target.exists():
            shutil.copytree(self.install.python_backend, target, ignore=_pycache)
            shutil.copy2(self.install.stub, target / "triton_python_backend_stub")
        return root

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (libdir, str(self.install.libs), env.get("LD_LIBRARY_PATH", "")) if p
        )
        # The stub runs the first `python3` on PATH's site-packages, not PYTHONPATH: this venv.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(self.install.binary),
                    f"--model-repository={self.repository}",
                    f"--backend-directory={self.backends}",
                    "--grpc-address=127.0.0.1",
                    f"--grpc-port={self.grpc_port}",
                    "--http-address=127.0.0.1",
                    f"--http-port={self.http_port}",
                    "--metrics-address=127.0.0.1",
                    f"--metrics-port={self.metrics_port}",
                    "--allow-metrics=false",
                    "--exit-timeout-secs=5",
                    f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,  # so kill() reaches the python backend stubs too
            )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        import tritonclient.grpc as grpcclient  # type: ignore[import-untyped,unused-ignore]

        deadline = time.monotonic() + timeout
        client = grpcclient.InferenceServerClient(self.grpc_url)
        try:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    break
                try:
                    if client.is_server_ready():
                        return
                except Exception:  # not listening yet: any client error means "try again"
                    pass
                time.sleep(0.1)
        finally:
            client.close()
        raise RuntimeError(f"tritonserver did not become ready; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the server and its stubs at once: a crash, not a clean stop."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        self._remove_regions()

    def _remove_regions(self) -> None:
        for path in Path("/dev/shm").glob(f"{self.shm_prefix}*"):
            path.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        self._remove_regions()


def _pycache(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__"}


def write_onnx_model(
    repository: Path,
    name: str,
    onnx_file: Path,
    *,
    input_name: str,
    input_dims: Sequence[int],
    outputs: dict[str, Sequence[int]],
    max_batch_size: int = 8,
    version: int = 1,
) -> Path:
    """`repository/name/` with config.pbtxt, `version/model.py` and `version/model.onnx`."""
    model_dir = repository / name
    version_dir = model_dir / str(version)
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(onnx_file, version_dir / "model.onnx")
    (version_dir / "model.py").write_text(MODEL_PY)
    out_text = ",\n".join(
        f'  {{ name: "{o}" data_type: TYPE_FP32 dims: [{", ".join(map(str, d))}] }}'
        for o, d in outputs.items()
    )
    (model_dir / "config.pbtxt").write_text(
        f'name: "{name}"\n'
        'backend: "python"\n'
        f"max_batch_size: {max_batch_size}\n"
        f'input [ {{ name: "{input_name}" data_type: TYPE_FP32 '
        f"dims: [{', '.join(map(str, input_dims))}] }} ]\n"
        f"output [\n{out_text}\n]\n"
        "instance_group [ { kind: KIND_CPU count: 1 } ]\n"
    )
    return model_dir

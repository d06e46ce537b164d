"""PyTorch on a GPU without TensorRT: fp16, torch.compile and CUDA graphs.

Takes a TorchScript file (`torch.jit.save`), a `torch.export` program (`.pt2`) or an
`nn.Module`. The module must map an NCHW float batch to the model's outputs (a tuple in
`output_names` order, or a dict). With `cuda_graphs`, torch.compile's `reduce-overhead` mode
captures one graph per batch size. On `device="cpu"` it runs fp32 eager (used by the tests:
CI has no GPU; the CUDA path was measured on an H100: docs/benchmarks/gpu_paths.md).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from heron.core.plan.settings.inference import TorchSettings
from heron.inference.backends.base import FloatArray, ModelInfo, check_batch
from heron.inference.errors import BackendError, ModelMismatchError


class TorchBackend:
    def __init__(
        self,
        module: Any,
        info: ModelInfo,
        *,
        device: str = "cuda",
        fp16: bool = True,
        compile: bool = True,
        cuda_graphs: bool = True,
    ) -> None:
        import torch

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelMismatchError(f"torch backend: device {device!r} but CUDA is not available")
        self._torch = torch
        self._device = torch.device(device)
        on_gpu = self._device.type == "cuda"
        self._dtype = torch.float16 if fp16 and on_gpu else torch.float32
        module = module.to(self._device)
        # torch.export modules refuse eval(): they are inference graphs already.
        with contextlib.suppress(NotImplementedError):
            module.eval()
        if self._dtype is torch.float16:
            module = module.half()
        if compile:
            mode = "reduce-overhead" if cuda_graphs and on_gpu else "default"
            module = torch.compile(module, mode=mode)
        self._module = module
        self._info = info

    @classmethod
    def from_file(cls, settings: TorchSettings, info: ModelInfo) -> TorchBackend:
        """A TorchScript (.pt, .ts) or torch.export (.pt2) file; `info` names its tensors."""
        import torch

        path = settings.model_file
        if not path.is_file():
            raise ModelMismatchError(f"torch model {path} does not exist")
        try:
            if path.suffix == ".pt2":
                program = torch.export.load(str(path))
                if settings.device != "cpu":
                    from torch.export.passes import move_to_device_pass

                    program = move_to_device_pass(program, settings.device)
                module = program.module()
            else:
                module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call,unused-ignore]
        except Exception as e:  # torch raises assorted errors for unreadable files
            raise ModelMismatchError(f"torch model {path}: cannot load: {e}") from e
        return cls(
            module,
            info,
            device=settings.device,
            fp16=settings.fp16,
            compile=settings.compile,
            cuda_graphs=settings.cuda_graphs,
        )

    def model_info(self) -> ModelInfo:
        return self._info

    def infer(self, batch: FloatArray) -> dict[str, FloatArray]:
        torch = self._torch
        batch = check_batch(batch, self._info)
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self._device, self._dtype, non_blocking=True)
            try:
                out = self._module(x)
            except Exception as e:  # a model that cannot run this batch will not on retry
                raise BackendError(f"torch model {self._info.name!r} failed: {e}") from e
            if isinstance(out, dict):
                items = [out[name] for name in self._info.output_names]
            else:
                items = list(out) if isinstance(out, list | tuple) else [out]
            if len(items) != len(self._info.output_names):
                raise BackendError(
                    f"torch model {self._info.name!r}: expected outputs "
                    f"{list(self._info.output_names)}, got {len(items)} tensors"
                )
            return {
                name: np.asarray(t.float().cpu().numpy(), np.float32)
                for name, t in zip(self._info.output_names, items, strict=True)
            }

    def ready(self) -> bool:
        return True

    def reset(self) -> None:
        """Nothing to reconnect; compiled graphs stay warm."""

    def close(self) -> None:
        self._module = None


def torch_model_info(
    path: Path, input_shape: tuple[int, int, int], outputs: tuple[str, ...]
) -> ModelInfo:
    """A ModelInfo for a torch file, whose tensors carry no names: they come from nvinfer."""
    return ModelInfo(
        name=path.stem,
        version=str(int(path.stat().st_mtime)),
        input_name="input",
        input_shape=input_shape,
        output_names=outputs,
        max_batch_size=0,
    )

"""The `model.py` of Heron's python-backend Triton models: ONNX Runtime on the model.onnx beside
it. It lets a Triton without the onnxruntime backend (the `nvidia-pytriton` wheel's server)
serve the same ONNX files, and it is how the integration tests check a generated repository.

Tensors cross the backend boundary through DLPack: with numpy 2, `as_numpy()` of the python
backend 2.51 returns zeros (../shared/NOTES.md).
"""

MODEL_PY = '''\
"""Triton python-backend model written by heron.engine: ONNX Runtime on model.onnx."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class _Capsule:
    """Lets numpy.from_dlpack take the bare capsule the python backend hands out."""

    def __init__(self, tensor):
        self._tensor = tensor

    def __dlpack__(self, *args, **kwargs):
        return self._tensor.to_dlpack()

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.input_name = config["input"][0]["name"]
        self.output_names = [o["name"] for o in config["output"]]
        parameters = config.get("parameters", {})
        threads = int(parameters.get("intra_op_threads", {}).get("string_value", "1"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        version_dir = Path(args["model_repository"]) / args["model_version"]
        path = version_dir / "model.onnx"
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def execute(self, requests):
        responses = []
        for request in requests:
            tensor = pb_utils.get_input_tensor_by_name(request, self.input_name)
            batch = np.array(np.from_dlpack(_Capsule(tensor)), dtype=np.float32, copy=True)
            outputs = self.session.run(self.output_names, {self.input_name: batch})
            tensors = [
                pb_utils.Tensor.from_dlpack(name, np.ascontiguousarray(value).__dlpack__())
                for name, value in zip(self.output_names, outputs)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
'''

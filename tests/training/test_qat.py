"""QAT (`training_config.enable_qat`): folding, int8 fake quantisation with TensorRT's Q/DQ
semantics, training, checkpoints, and the two exported forms."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from heron.evaluation.kitti import KittiDataset
from heron.training import checkpoint as ckpt
from heron.training import qat
from heron.training.dataset import LabelledImage, from_kitti
from heron.training.export import export_onnx
from heron.training.model import DetectNetV2
from heron.training.prune.layout import load_pruned
from heron.training.settings import TrainingSettings
from heron.training.train import TrainOptions, train
from onnx import numpy_helper
from torch import nn

from tests.training.conftest import INPUT, tiny_settings

OPTIONS = TrainOptions(device="cpu", progress=False, workers=2, validate=False)


def _settings(arch: str = "mobilenet_v2", **model: object) -> TrainingSettings:
    s = tiny_settings(arch=arch, num_epochs=2)
    return replace(
        s,
        model=replace(s.model, **model),  # type: ignore[arg-type]
        optim=replace(s.optim, enable_qat=True),
    )


def _images(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, INPUT[1], INPUT[0], generator=torch.Generator().manual_seed(seed))


def _trained_bn(settings: TrainingSettings) -> DetectNetV2:
    """A float network whose BatchNorms hold non-trivial statistics (as after training)."""
    torch.manual_seed(0)
    model = DetectNetV2(settings.model, len(settings.classes))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def synthetic_items(synthetic_kitti: Path) -> list[LabelledImage]:
    items, _ = from_kitti(KittiDataset(synthetic_kitti / "kitti"), tiny_settings())
    return items


@pytest.mark.parametrize(
    ("arch", "extra"),
    [("mobilenet_v2", {"output_stride": 8}), ("mobilenet_v2", {}), ("resnet", {})],
)
def test_folding_batch_norms_keeps_what_the_network_computes(
    arch: str, extra: dict[str, object]
) -> None:
    model = _trained_bn(_settings(arch, **extra))
    x = _images()
    with torch.no_grad():
        before = model(x)
        folded = qat.fold_batch_norms(model)
        after = model(x)
    assert folded == sum(1 for m in model.modules() if isinstance(m, nn.Conv2d)) - 2  # not heads
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    for b, a in zip(before, after, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_a_batch_norm_not_after_its_convolution_is_refused() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.BatchNorm2d(8))
    with pytest.raises(qat.QatError, match=r"^2: a BatchNorm that does not follow its convolution"):
        qat.fold_batch_norms(model.eval())


def test_calibrating_a_float_network_is_refused() -> None:
    with pytest.raises(qat.QatError, match="prepare it for QAT first"):
        qat.calibrate(nn.Sequential(nn.Conv2d(3, 8, 3)), [torch.rand(1, 3, 8, 8)])


def test_activations_round_to_onnx_quantize_linear_with_a_symmetric_scale() -> None:
    quantizer = qat.FakeQuantizer()
    quantizer.amax.fill_(1.27)  # scale 0.01
    x = torch.tensor([0.004, 0.006, -0.015, 1.5, -1.5, 0.505])
    # Round half to even as QuantizeLinear does, then saturate to int8's [-128, 127].
    expected = torch.tensor([0.0, 0.01, -0.02, 1.27, -1.28, 0.5])
    torch.testing.assert_close(quantizer(x), expected)


def test_weights_quantise_per_output_channel_with_max_over_127() -> None:
    conv = nn.Conv2d(1, 2, 1, bias=False)
    conv.weight.data = torch.tensor([1.0, 0.3]).view(2, 1, 1, 1)
    torch.testing.assert_close(qat.weight_scales(conv.weight), torch.tensor([1 / 127, 0.3 / 127]))


def test_calibration_sets_one_range_per_convolution_from_the_data() -> None:
    model = _trained_bn(_settings())
    names = qat.prepare_structure(model)
    used = qat.calibrate(model, [_images(2, seed) for seed in range(3)])
    amax = {n: m.amax.item() for n, m in model.named_modules() if isinstance(m, qat.FakeQuantizer)}
    assert used == 3
    assert len(amax) == len(names) and all(v > 0 for v in amax.values())
    first = model.get_submodule("backbone.features.0.0")
    assert isinstance(first, qat.QuantConv2d)
    with torch.no_grad():  # the first conv sees the normalised image: ~[-2.1, 2.6]
        normalised = (_images() - model.mean) / model.std
    assert 1.5 < first.input_quantizer.amax.item() <= normalised.abs().max().item()


@pytest.fixture(scope="module")
def qat_checkpoint(
    synthetic_items: list[LabelledImage], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    results = tmp_path_factory.mktemp("qat")
    result = train(_settings(), synthetic_items, [], results, OPTIONS)
    return result.final_model


def test_a_qat_run_saves_folded_weights_and_ranges_and_reloads_them(qat_checkpoint: Path) -> None:
    saved = ckpt.load(qat_checkpoint, with_training_state=False)
    assert saved.settings.optim.enable_qat
    assert qat.is_qat_state(saved.model)
    assert not any("running_mean" in k for k in saved.model)
    model, _ = load_pruned(qat_checkpoint)
    assert all(type(m) is not nn.Conv2d for m in model.modules())
    model.load_state_dict(saved.model)  # the rebuilt structure takes the tensors as they are


def test_export_writes_tensorrt_qdq_and_the_cpu_form_computes_the_same(
    qat_checkpoint: Path, tmp_path: Path
) -> None:
    report = export_onnx(qat_checkpoint, tmp_path / "model.onnx")
    graph = onnx.load(str(report.onnx)).graph
    quantize = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    convs = [n for n in graph.node if n.op_type == "Conv"]
    constants = _constants(graph)
    weights = [n for n in quantize if n.input[0] in {i.name for i in graph.initializer}]
    assert len(weights) == len(convs)  # every weight, per output channel
    assert all(constants[n.input[1]].ndim == 1 for n in weights)
    assert all(
        constants[n.input[2]].dtype == np.int8 and not constants[n.input[2]].any() for n in quantize
    )
    activations = [n for n in quantize if n not in weights]
    assert activations and all(
        constants[n.input[1]].ndim == 0 or constants[n.input[1]].size == 1 for n in activations
    )
    assert report.max_abs_diff_cov < 0.05  # rounding ties may fall the other way in ONNX Runtime

    cpu = qat.cpu_form(report.onnx, tmp_path / "model.u8s8.onnx")
    x = _images(2, 5).numpy()
    s8 = ort.InferenceSession(str(report.onnx)).run(None, {"input_1": x})
    u8 = ort.InferenceSession(str(cpu)).run(None, {"input_1": x})
    for a, b in zip(s8, u8, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    cpu_graph = onnx.load(str(cpu)).graph
    cpu_constants = _constants(cpu_graph)
    zeros = {
        n.input[2]: cpu_constants[n.input[2]]
        for n in cpu_graph.node
        if n.op_type == "QuantizeLinear"
    }
    weight_zeros = {n.input[2] for n in weights}
    assert all(z.dtype == np.int8 for name, z in zeros.items() if name in weight_zeros)
    assert all(
        z.dtype == np.uint8 and (z == 128).all()
        for name, z in zeros.items()
        if name not in weight_zeros
    )


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {
        n.output[0]: numpy_helper.to_array(n.attribute[0].t)
        for n in graph.node
        if n.op_type == "Constant"
    }
    values.update({i.name: numpy_helper.to_array(i) for i in graph.initializer})
    return values


def test_cpu_form_refuses_an_asymmetric_model(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    scale = numpy_helper.from_array(np.array(0.1, dtype=np.float32), "s")
    zero = numpy_helper.from_array(np.array(3, dtype=np.int8), "z")
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], [scale, zero])
    path = tmp_path / "asym.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(qat.QatError, match=r"asym.onnx: activation zero point z is 3, not int8 0"):
        qat.cpu_form(path, tmp_path / "out.onnx")


def test_the_tao_spec_switch_turns_qat_on() -> None:
    from google.protobuf import text_format
    from heron.training.spec import from_experiment
    from heron.v1.tao.experiment_pb2 import Experiment

    spec = Path("models/facemask/detectnet_v2_train_mobilenet_v2_facemask.txt").read_text()
    experiment = text_format.Parse(spec, Experiment())
    assert not from_experiment(experiment).optim.enable_qat
    experiment.training_config.enable_qat = True
    assert from_experiment(experiment).optim.enable_qat


def test_a_qat_job_that_asks_for_calibration_is_refused_before_training(
    synthetic_kitti: Path, tmp_path: Path, root_logging_restored: None
) -> None:
    from heron.training import CalibrationStep, JobRequest, TrainingError, run_job

    from tests.training.test_job import SHORT, write_spec

    spec = write_spec(tmp_path)
    spec.write_text(
        spec.read_text()
        .replace("training_config {", "training_config {\n  enable_qat: true", 1)
        .replace('"split/*"', f'"{synthetic_kitti}/split/*"')
        .replace('"kitti/images"', f'"{synthetic_kitti}/kitti/images"')
    )
    request = JobRequest(spec, tmp_path / "job", SHORT, calibration=CalibrationStep())
    with pytest.raises(TrainingError, match=r"^training_config.enable_qat: the model trains"):
        run_job(request)
    assert not (tmp_path / "job" / "model.pt").exists()

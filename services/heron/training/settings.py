"""Typed training settings: what DetectNet_v2 training needs from a TAO spec, checked once.

`heron.training.spec.from_experiment` builds these from the TAO `Experiment` message; the
model, rasteriser, losses and loop take them instead of the protobuf. They are stdlib
dataclasses, not pydantic models, on purpose: the training core must run where only torch
and numpy are installed (the GPU machines), and a checkpoint stores them as a plain dict
(`to_dict` / `from_dict`) so that `torch.load(weights_only=True)` can read it back.
`ClusterSettings` comes from heron.evaluation.model_settings (stdlib only as well), which reads
the scoring part of `to_dict` back for the engine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Literal, TypeVar, get_args, get_type_hints

# Clustering is what scoring a model needs too (the engine's INT8 gate reads it from an exported
# model's metadata): its settings type lives below the services, in heron.evaluation.
from heron.evaluation.model_settings import ClusterSettings, target_class

STRIDE = 16
"""DetectNet_v2's output stride: one grid cell per 16×16 input pixels."""
OUTPUT_STRIDES = (8, 16)
"""16 is TAO's; 8 (Heron's `model_config.output_stride`) adds a stride-8 neck for small objects."""

Arch = Literal["resnet", "mobilenet_v2"]
RESNET_DEPTHS = (10, 18, 34)


class SettingsError(ValueError):
    """A setting is out of range; the message names the field, what was expected and got."""


def _check(ok: bool, name: str, expected: str, got: object) -> None:
    if not ok:
        raise SettingsError(f"[{name}] expected {expected}, got {got!r}")


@dataclass(frozen=True)
class ModelSettings:
    """`model_config` plus the input size from `augmentation_config.preprocessing`."""

    arch: Arch = "resnet"
    num_layers: int = 18
    input_width: int = 960
    input_height: int = 544
    pretrained_model_file: str = ""
    freeze_blocks: tuple[int, ...] = ()
    freeze_bn: bool = False
    use_batch_norm: bool = True
    bbox_scale: float = 35.0
    bbox_offset: float = 0.5
    load_graph: bool = False
    """TAO's retrain switch: the (pruned) pretrained file brings layers and weights."""
    output_stride: int = STRIDE
    """Input pixels per output cell: 16 (TAO) or 8 (stride-8 neck)."""

    def __post_init__(self) -> None:
        _check(
            self.arch in get_args(Arch), "model_config.arch", "resnet or mobilenet_v2", self.arch
        )
        _check(
            not self.load_graph or bool(self.pretrained_model_file),
            "model_config.load_graph",
            "pretrained_model_file naming the (pruned) model to load",
            self.pretrained_model_file,
        )
        if self.arch == "resnet":
            _check(
                self.num_layers in RESNET_DEPTHS,
                "model_config.num_layers",
                f"one of {RESNET_DEPTHS} for arch resnet",
                self.num_layers,
            )
        for name in ("input_width", "input_height"):
            value = getattr(self, name)
            _check(
                value > 0 and value % STRIDE == 0,
                f"augmentation_config.preprocessing.output_image_{name.split('_')[1]}",
                f"a positive multiple of {STRIDE}",
                value,
            )
        _check(self.bbox_scale > 0, "model_config.objective_set.bbox.scale", "> 0", self.bbox_scale)
        _check(
            self.output_stride in OUTPUT_STRIDES,
            "model_config.output_stride",
            f"one of {OUTPUT_STRIDES}",
            self.output_stride,
        )

    @property
    def grid(self) -> tuple[int, int]:
        """(grid height, grid width) of the network output."""
        return self.input_height // self.output_stride, self.input_width // self.output_stride


@dataclass(frozen=True)
class RasterClass:
    """`bbox_rasterizer_config.target_class_config[<class>]` (TAO's defaults)."""

    cov_center_x: float = 0.5
    cov_center_y: float = 0.5
    cov_radius_x: float = 1.0
    cov_radius_y: float = 1.0
    bbox_min_radius: float = 1.0

    def __post_init__(self) -> None:
        for name in ("cov_center_x", "cov_center_y"):
            value = getattr(self, name)
            _check(
                0.0 <= value <= 1.0, f"bbox_rasterizer_config.{name}", "a value in [0, 1]", value
            )
        for name in ("cov_radius_x", "cov_radius_y", "bbox_min_radius"):
            value = getattr(self, name)
            _check(value >= 0.0, f"bbox_rasterizer_config.{name}", ">= 0", value)


@dataclass(frozen=True)
class Objective:
    initial_weight: float = 1.0
    weight_target: float = 1.0

    def __post_init__(self) -> None:
        _check(self.initial_weight >= 0, "objectives.initial_weight", ">= 0", self.initial_weight)
        _check(self.weight_target >= 0, "objectives.weight_target", ">= 0", self.weight_target)


@dataclass(frozen=True)
class CostClass:
    """`cost_function_config.target_classes[i]`; objectives are "cov" and "bbox"."""

    class_weight: float = 1.0
    coverage_foreground_weight: float = 0.05
    cov: Objective = field(default_factory=Objective)
    bbox: Objective = field(default_factory=lambda: Objective(10.0, 10.0))

    def __post_init__(self) -> None:
        _check(self.class_weight >= 0, "class_weight", ">= 0", self.class_weight)
        w = self.coverage_foreground_weight
        _check(0.0 <= w <= 1.0, "coverage_foreground_weight", "a value in [0, 1]", w)


@dataclass(frozen=True)
class AugmentSettings:
    """`augmentation_config` (sizes in pixels of the network input, angles as TAO has them)."""

    min_bbox_width: float = 1.0
    min_bbox_height: float = 1.0
    hflip_probability: float = 0.5
    vflip_probability: float = 0.0
    zoom_min: float = 1.0
    zoom_max: float = 1.0
    translate_max_x: float = 0.0
    translate_max_y: float = 0.0
    rotate_rad_max: float = 0.0
    rotate_probability: float = 1.0
    hue_rotation_max: float = 0.0
    saturation_shift_max: float = 0.0
    contrast_scale_max: float = 0.0
    contrast_center: float = 0.5
    color_shift_stddev: float = 0.0
    # Heron extensions (spatial_augmentation fields 1000-1002; see augment.mosaic)
    mosaic_probability: float = 0.0
    mosaic_min_scale: float = 0.5
    mosaic_off_last_epochs: int = 0

    def __post_init__(self) -> None:
        for name in (
            "hflip_probability",
            "vflip_probability",
            "rotate_probability",
            "mosaic_probability",
        ):
            p = getattr(self, name)
            _check(0.0 <= p <= 1.0, f"augmentation_config.{name}", "a probability in [0, 1]", p)
        _check(self.zoom_min > 0, "augmentation_config.zoom_min", "> 0", self.zoom_min)
        _check(
            self.zoom_max >= self.zoom_min,
            "augmentation_config.zoom_max",
            f">= zoom_min ({self.zoom_min})",
            self.zoom_max,
        )
        _check(
            0.0 < self.mosaic_min_scale <= 1.0,
            "augmentation_config.mosaic_min_scale",
            "a scale in (0, 1]",
            self.mosaic_min_scale,
        )
        _check(
            self.mosaic_off_last_epochs >= 0,
            "augmentation_config.mosaic_off_last_epochs",
            ">= 0",
            self.mosaic_off_last_epochs,
        )


@dataclass(frozen=True)
class OptimSettings:
    """`training_config`: batch, epochs, schedule, Adam, regulariser, checkpoints."""

    batch_size: int = 16
    num_epochs: int = 120
    min_learning_rate: float = 5e-6
    max_learning_rate: float = 5e-4
    soft_start: float = 0.1
    annealing: float = 0.7
    regularizer: Literal["NO_REG", "L1", "L2"] = "L1"
    regularizer_weight: float = 3e-9
    adam_epsilon: float = 1e-8
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    checkpoint_interval: int = 10
    ema_decay: float = 0.0
    """Heron extension (`training_config.ema_decay`): 0 = no weight averaging."""
    enable_qat: bool = False
    """TAO's `training_config.enable_qat`: train through int8 fake quantisation
    (`heron.training.qat`); the exported ONNX is then the explicitly quantised model."""

    def __post_init__(self) -> None:
        _check(self.batch_size > 0, "training_config.batch_size_per_gpu", "> 0", self.batch_size)
        _check(self.num_epochs > 0, "training_config.num_epochs", "> 0", self.num_epochs)
        lo, hi = self.min_learning_rate, self.max_learning_rate
        _check(lo > 0 and math.isfinite(lo), "min_learning_rate", "a number > 0", lo)
        _check(hi >= lo, "max_learning_rate", f">= min_learning_rate ({lo})", hi)
        _check(0.0 <= self.soft_start <= 1.0, "soft_start", "a fraction in [0, 1]", self.soft_start)
        _check(
            self.soft_start <= self.annealing <= 1.0,
            "annealing",
            f"a fraction in [soft_start ({self.soft_start}), 1]",
            self.annealing,
        )
        _check(self.regularizer_weight >= 0, "regularizer.weight", ">= 0", self.regularizer_weight)
        _check(self.checkpoint_interval > 0, "checkpoint_interval", "> 0", self.checkpoint_interval)
        _check(0.0 <= self.ema_decay < 1.0, "ema_decay", "a decay in [0, 1)", self.ema_decay)


@dataclass(frozen=True)
class EvalSettings:
    """`evaluation_config`; sizes in pixels of the network input."""

    validation_period: int = 10
    first_validation_epoch: int = 1
    minimum_overlap: dict[str, float] = field(default_factory=dict)
    box_limits: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    """class -> (minimum_height, maximum_height, minimum_width, maximum_width)."""
    average_precision_mode: Literal["SAMPLE", "INTEGRATE"] = "INTEGRATE"


@dataclass(frozen=True)
class TrainingSettings:
    """Everything training needs; `classes` is the order of the network's output channels."""

    classes: tuple[str, ...]
    model: ModelSettings = field(default_factory=ModelSettings)
    raster: dict[str, RasterClass] = field(default_factory=dict)
    deadzone_radius: float = 0.67
    cost: dict[str, CostClass] = field(default_factory=dict)
    enable_autoweighting: bool = False
    min_objective_weight: float = 1e-4
    max_objective_weight: float = 0.9999
    clustering: dict[str, ClusterSettings] = field(default_factory=dict)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    evaluation: EvalSettings = field(default_factory=EvalSettings)
    class_mapping: dict[str, str] = field(default_factory=dict)
    """dataset class -> target class; empty maps every class in `classes` to itself."""
    random_seed: int = 42

    def __post_init__(self) -> None:
        _check(
            len(self.classes) > 0, "cost_function_config.target_classes", "one class or more", []
        )
        _check(
            len(set(self.classes)) == len(self.classes),
            "cost_function_config.target_classes",
            "unique class names",
            list(self.classes),
        )
        _check(
            0.0 <= self.deadzone_radius <= 1.0,
            "bbox_rasterizer_config.deadzone_radius",
            "a value in [0, 1]",
            self.deadzone_radius,
        )
        for name, table in (("bbox_rasterizer_config", self.raster), ("cost", self.cost)):
            unknown = sorted(set(table) - set(self.classes))
            _check(not unknown, name, f"classes among {list(self.classes)}", unknown)
        unknown = sorted(set(self.class_mapping.values()) - set(self.classes))
        _check(
            not unknown,
            "dataset_config.target_class_mapping",
            f"target classes among {list(self.classes)}",
            unknown,
        )

    def raster_for(self, name: str) -> RasterClass:
        return self.raster.get(name, RasterClass())

    def cost_for(self, name: str) -> CostClass:
        return self.cost.get(name, CostClass())

    def cluster_for(self, name: str) -> ClusterSettings:
        return self.clustering.get(name, ClusterSettings())

    def target_of(self, dataset_class: str) -> str | None:
        """The target class a dataset class trains as; None when it is not trained on (case
        does not matter, as under TAO: `model_settings.target_class`)."""
        return target_class(dataset_class, self.class_mapping, self.classes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (tuples become lists), for checkpoints and ONNX metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingSettings:
        """Inverse of `to_dict`; raises SettingsError naming an unknown or missing field."""
        return _build(cls, data, "settings")


T = TypeVar("T")


def _build(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise SettingsError(f"[{where}] expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise SettingsError(f"[{where}] unknown fields {unknown}; expected some of {sorted(names)}")
    kwargs = {key: _convert(hints[key], value, f"{where}.{key}") for key, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise SettingsError(f"[{where}] {e}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = getattr(hint, "__origin__", None)
    if is_dataclass(hint):
        return _build(hint, value, where)  # type: ignore[arg-type]
    if origin is tuple:
        return tuple(value)
    if origin is dict:
        value_hint = get_args(hint)[1]
        if not isinstance(value, dict):
            raise SettingsError(f"[{where}] expected a mapping, got {type(value).__name__}")
        return {k: _convert(value_hint, v, f"{where}.{k}") for k, v in value.items()}
    return value

"""Checks a parsed TAO spec must pass beyond its syntax: ranges, required sections, and the
agreements between sections (the classes of cost_function_config, bbox_rasterizer_config and
postprocessing_config must be the targets of dataset_config.target_class_mapping, ...).

Ranges follow what TAO itself enforces or needs to train; each finding names the field path
and the line the field (or its nearest present parent) was written on.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import Message

from heron.core.config.diagnostics import Diagnostics
from heron.core.config.tao.paths import FieldLines, keyed
from heron.v1.tao import (
    augmentation_config_pb2,
    dataset_export_config_pb2,
    experiment_pb2,
    model_config_pb2,
    postprocessing_config_pb2,
    training_config_pb2,
)

# DetectNet_v2's output grid has a stride of 16 pixels.
STRIDE = 16
ARCHS = {
    "resnet": {10, 18, 34, 50, 101},
    "vgg": {16, 19},
    "darknet": {19, 53},
    "mobilenet_v1": None,
    "mobilenet_v2": None,
    "squeezenet": None,
    "googlenet": None,
    "efficientnet_b0": None,
}
OBJECTIVES = ("cov", "bbox")
TRAIN_SECTIONS = (
    "dataset_config",
    "augmentation_config",
    "model_config",
    "cost_function_config",
    "training_config",
    "bbox_rasterizer_config",
    "postprocessing_config",
    "evaluation_config",
)
PARTITION_MODES = ("random", "sequence")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png")


@dataclass
class Checker:
    source: Path
    lines: FieldLines
    diags: Diagnostics

    def error(self, path: str, message: str) -> None:
        self.diags.error(self.source, self.lines.line_of(path), message, path)

    def warn(self, path: str, message: str) -> None:
        self.diags.warn(self.source, self.lines.line_of(path), message, path)

    def within(
        self,
        msg: Message,
        name: str,
        path: str,
        low: float | None = None,
        high: float | None = None,
        *,
        low_open: bool = False,
        required: bool = False,
    ) -> None:
        """Error unless `msg.name` lies in [low, high] ((low, high] with low_open)."""
        at = f"{path}.{name}"
        if not msg.HasField(name):
            if required:
                self.error(at, f"{name} is required")
            return
        value = getattr(msg, name)
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and value > high
        if too_low or too_high:
            self.error(at, f"{name} must be {_range(low, high, low_open)}, got {value:g}")

    def existing(self, path: str, value: str, what: str) -> None:
        """Warn when a referenced file, folder or glob matches nothing on this machine."""
        target = Path(value) if Path(value).is_absolute() else self.source.parent / value
        if any(c in value for c in "*?["):
            if not glob.glob(str(target)):
                self.warn(path, f"{what} {value!r} matches no file")
        elif not target.exists():
            self.warn(path, f"{what} {value!r} does not exist")


def _range(low: float | None, high: float | None, low_open: bool) -> str:
    if high is None:
        return f"{'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"<= {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}]"


def check_experiment(spec: experiment_pb2.Experiment, c: Checker, check_paths: bool) -> None:
    for section in TRAIN_SECTIONS:
        if not spec.HasField(section):  # type: ignore[arg-type]
            c.error(section, f"section {section} is required to train DetectNet_v2")
    classes = target_classes(spec)
    _dataset(spec, c, check_paths)
    _augmentation(spec.augmentation_config, c)
    _model(spec.model_config, c, check_paths)
    _cost_function(spec, classes, c)
    _rasterizer(spec, classes, c)
    _postprocessing(spec, classes, c)
    _evaluation(spec, classes, c)
    _training(spec.training_config, c)


def target_classes(spec: experiment_pb2.Experiment) -> list[str]:
    """The distinct targets of target_class_mapping, sorted (a proto map has no order)."""
    return sorted(set(spec.dataset_config.target_class_mapping.values()))


def _dataset(spec: experiment_pb2.Experiment, c: Checker, check_paths: bool) -> None:
    ds = spec.dataset_config
    if not spec.HasField("dataset_config"):
        return
    if not ds.data_sources:
        c.error("dataset_config.data_sources", "at least one data_sources block is required")
    sources = [(f"dataset_config.data_sources[{i}]", s) for i, s in enumerate(ds.data_sources)]
    if ds.HasField("validation_data_source"):
        sources.append(("dataset_config.validation_data_source", ds.validation_data_source))
    elif not ds.HasField("validation_fold"):
        c.error(
            "dataset_config",
            "validation data is not set: give validation_fold (a fold of the converted "
            "TFRecords) or a validation_data_source",
        )
    for path, source in sources:
        for name in ("tfrecords_path", "image_directory_path"):
            if not getattr(source, name):
                c.error(f"{path}.{name}", f"{name} is required in every data source")
            elif check_paths:
                c.existing(f"{path}.{name}", getattr(source, name), name)
    if not ds.target_class_mapping:
        c.error("dataset_config.target_class_mapping", "target_class_mapping is required")
    for source_class in ds.target_class_mapping:
        if source_class != source_class.lower():
            c.warn(
                keyed("dataset_config.target_class_mapping", source_class),
                f"dataset class {source_class!r} has capitals: TAO's dataset_convert "
                "lower-cases KITTI class names, so under TAO it matches no label (Heron matches "
                "labels to keys whatever their case); write it in lower case",
            )
    ext = ds.image_extension
    if ds.HasField("image_extension") and ext.lower() not in IMAGE_EXTENSIONS:
        c.warn(
            "dataset_config.image_extension",
            f"image_extension {ext!r} is none of {', '.join(IMAGE_EXTENSIONS)} (no dot)",
        )


def _augmentation(aug: augmentation_config_pb2.AugmentationConfig, c: Checker) -> None:
    base = "augmentation_config"
    pre = aug.preprocessing
    p = f"{base}.preprocessing"
    if not aug.HasField("preprocessing"):
        c.error(p, "preprocessing (the network input size) is required")
    for name in ("output_image_width", "output_image_height"):
        value = getattr(pre, name)
        if not value:
            c.error(f"{p}.{name}", f"{name} is required and must be > 0")
        elif value % STRIDE:
            c.error(
                f"{p}.{name}",
                f"{name} must be a multiple of {STRIDE} (the output stride), got {value}",
            )
    if pre.output_image_channel not in (1, 3):
        got = pre.output_image_channel if pre.HasField("output_image_channel") else "nothing"
        c.error(f"{p}.output_image_channel", f"output_image_channel must be 1 or 3, got {got}")
    for low, high in (("crop_left", "crop_right"), ("crop_top", "crop_bottom")):
        if getattr(pre, high) and getattr(pre, low) >= getattr(pre, high):
            c.error(f"{p}.{high}", f"{high} must be greater than {low}")
    for name in ("min_bbox_width", "min_bbox_height", "scale_width", "scale_height"):
        c.within(pre, name, p, 0)
    s = f"{base}.spatial_augmentation"
    spatial = aug.spatial_augmentation
    for name in ("hflip_probability", "vflip_probability", "rotate_probability"):
        c.within(spatial, name, s, 0, 1)
    for name in ("zoom_min", "zoom_max"):
        c.within(spatial, name, s, 0, low_open=True)
    for name in ("translate_max_x", "translate_max_y", "rotate_rad_max"):
        c.within(spatial, name, s, 0)
    if spatial.zoom_min > spatial.zoom_max and spatial.HasField("zoom_max"):
        c.error(f"{s}.zoom_min", "zoom_min must not exceed zoom_max")
    col = f"{base}.color_augmentation"
    color = aug.color_augmentation
    c.within(color, "hue_rotation_max", col, 0, 360)
    for name in ("color_shift_stddev", "saturation_shift_max", "contrast_scale_max"):
        c.within(color, name, col, 0, 1)
    c.within(color, "contrast_center", col, 0, 1)


def _model(model: model_config_pb2.ModelConfig, c: Checker, check_paths: bool) -> None:
    p = "model_config"
    if not model.arch:
        c.warn(f"{p}.arch", "arch is not set: TAO refuses a spec without it")
    elif model.arch not in ARCHS:
        c.error(f"{p}.arch", f"arch {model.arch!r} is not one of {', '.join(ARCHS)}")
    depths = ARCHS.get(model.arch or "resnet")
    if depths is not None and model.num_layers not in depths:
        c.error(
            f"{p}.num_layers",
            f"num_layers for {model.arch or 'resnet'} must be one of "
            f"{', '.join(map(str, sorted(depths)))}, got {model.num_layers}",
        )
    c.within(model, "dropout_rate", p, 0, 1)
    for i, block in enumerate(model.freeze_blocks):
        if block < 0 or block != int(block):
            c.error(
                f"{p}.freeze_blocks", f"freeze_blocks[{i}] must be a block index, got {block:g}"
            )
    objectives = model.objective_set
    o = f"{p}.objective_set"
    for name in OBJECTIVES:
        if not objectives.HasField(name):  # type: ignore[arg-type]
            c.error(f"{o}.{name}", f"objective_set needs a {name} objective")
    if objectives.HasField("bbox"):
        c.within(objectives.bbox, "scale", f"{o}.bbox", 0, low_open=True, required=True)
        c.within(objectives.bbox, "offset", f"{o}.bbox", 0, required=True)
    floatx = model.training_precision.backend_floatx
    invalid = model_config_pb2.ModelConfig.TrainingPrecision.INVALID
    if floatx == invalid:
        c.error(f"{p}.training_precision.backend_floatx", "backend_floatx INVALID cannot train")
    if model.load_graph and not model.pretrained_model_file:
        c.error(
            f"{p}.load_graph", "load_graph: true needs pretrained_model_file (the model to load)"
        )
    if model.pretrained_model_file and check_paths:
        c.existing(f"{p}.pretrained_model_file", model.pretrained_model_file, "model file")


def _cost_function(spec: experiment_pb2.Experiment, classes: list[str], c: Checker) -> None:
    cost = spec.cost_function_config
    p = "cost_function_config"
    if not spec.HasField("cost_function_config"):
        return
    names = [t.name for t in cost.target_classes]
    for i, target in enumerate(cost.target_classes):
        t = f"{p}.target_classes[{i}]"
        if names.index(target.name) != i:
            c.error(f"{t}.name", f"target class {target.name!r} is listed twice")
        elif classes and target.name not in classes:
            c.error(f"{t}.name", _not_a_target(target.name, classes))
        for name in ("class_weight", "coverage_foreground_weight"):
            c.within(target, name, t, 0, required=True)
        given = [o.name for o in target.objectives]
        for j, objective in enumerate(target.objectives):
            op = f"{t}.objectives[{j}]"
            if objective.name not in OBJECTIVES:
                c.error(f"{op}.name", f"objective must be 'cov' or 'bbox', got {objective.name!r}")
            for name in ("initial_weight", "weight_target"):
                c.within(objective, name, op, 0)
        for missing in (o for o in OBJECTIVES if o not in given):
            c.error(f"{t}.objectives", f"class {target.name!r} has no {missing!r} objective")
    for missing in (k for k in classes if k not in names):
        c.error(f"{p}.target_classes", f"target class {missing!r} has no target_classes entry")
    c.within(cost, "max_objective_weight", p, 0, 1)
    c.within(cost, "min_objective_weight", p, 0, 1)
    if cost.min_objective_weight > cost.max_objective_weight:
        c.error(f"{p}.min_objective_weight", "min_objective_weight exceeds max_objective_weight")


def _not_a_target(name: str, classes: list[str]) -> str:
    return (
        f"class {name!r} is not a target of dataset_config.target_class_mapping "
        f"(targets: {', '.join(classes)})"
    )


def _rasterizer(spec: experiment_pb2.Experiment, classes: list[str], c: Checker) -> None:
    ras = spec.bbox_rasterizer_config
    p = "bbox_rasterizer_config"
    if not spec.HasField("bbox_rasterizer_config"):
        return
    for name, config in ras.target_class_config.items():
        t = keyed(f"{p}.target_class_config", name)
        if classes and name not in classes:
            c.warn(t, _not_a_target(name, classes) + "; it is ignored")
        for field in ("cov_center_x", "cov_center_y"):
            c.within(config, field, t, 0, 1, required=True)
        for field in ("cov_radius_x", "cov_radius_y"):
            c.within(config, field, t, 0, 1, low_open=True, required=True)
        c.within(config, "bbox_min_radius", t, 0, 1, required=True)
    for missing in (k for k in classes if k not in ras.target_class_config):
        c.error(f"{p}.target_class_config", f"target class {missing!r} has no rasterizer config")
    c.within(ras, "deadzone_radius", p, 0, 1, required=True)


def _postprocessing(spec: experiment_pb2.Experiment, classes: list[str], c: Checker) -> None:
    post = spec.postprocessing_config
    p = "postprocessing_config.target_class_config"
    if not spec.HasField("postprocessing_config"):
        return
    for name, config in post.target_class_config.items():
        t = keyed(p, name)
        if classes and name not in classes:
            c.warn(t, _not_a_target(name, classes) + "; it is ignored")
        _clustering(config.clustering_config, f"{t}.clustering_config", c)
        c.within(config.confidence_config, "confidence_threshold", f"{t}.confidence_config", 0, 1)
    for missing in (k for k in classes if k not in post.target_class_config):
        c.error(p, f"target class {missing!r} has no clustering config")


def _clustering(cl: postprocessing_config_pb2.ClusteringConfig, p: str, c: Checker) -> None:
    c.within(cl, "coverage_threshold", p, 0, 1, required=True)
    c.within(cl, "minimum_bounding_box_height", p, 0)
    algorithm = postprocessing_config_pb2.ClusteringConfig
    if cl.clustering_algorithm in (algorithm.DBSCAN, algorithm.HYBRID):
        c.within(cl, "dbscan_eps", p, 0, 1, low_open=True, required=True)
        c.within(cl, "dbscan_min_samples", p, 0)
        c.within(cl, "dbscan_confidence_threshold", p, 0, 1)
    if cl.clustering_algorithm in (algorithm.NMS, algorithm.HYBRID):
        c.within(cl, "nms_iou_threshold", p, 0, 1, low_open=True, required=True)
        c.within(cl, "nms_confidence_threshold", p, 0, 1)


def _evaluation(spec: experiment_pb2.Experiment, classes: list[str], c: Checker) -> None:
    ev = spec.evaluation_config
    p = "evaluation_config"
    if not spec.HasField("evaluation_config"):
        return
    c.within(ev, "validation_period_during_training", p, 0, low_open=True, required=True)
    c.within(ev, "first_validation_epoch", p, 0, low_open=True)
    epochs = spec.training_config.num_epochs
    if epochs and ev.first_validation_epoch > epochs:
        c.warn(
            f"{p}.first_validation_epoch",
            f"first_validation_epoch is after the last epoch ({epochs})",
        )
    for name, overlap in ev.minimum_detection_ground_truth_overlap.items():
        at = keyed(f"{p}.minimum_detection_ground_truth_overlap", name)
        if not 0 < overlap <= 1:
            c.error(at, f"overlap (IoU) for {name!r} must be in (0, 1], got {overlap:g}")
        if classes and name not in classes:
            c.warn(at, _not_a_target(name, classes) + "; it is ignored")
    for name, box in ev.evaluation_box_config.items():
        at = keyed(f"{p}.evaluation_box_config", name)
        for low, high in (("minimum_height", "maximum_height"), ("minimum_width", "maximum_width")):
            c.within(box, low, at, 0)
            if box.HasField(high) and getattr(box, low) > getattr(box, high):  # type: ignore[arg-type]
                c.error(f"{at}.{high}", f"{high} must be >= {low}")
    for missing in (k for k in classes if k not in ev.minimum_detection_ground_truth_overlap):
        c.error(
            f"{p}.minimum_detection_ground_truth_overlap",
            f"target class {missing!r} has no overlap",
        )


def _training(tr: training_config_pb2.TrainingConfig, c: Checker) -> None:
    p = "training_config"
    c.within(tr, "batch_size_per_gpu", p, 0, low_open=True, required=True)
    c.within(tr, "num_epochs", p, 0, low_open=True, required=True)
    if tr.checkpoint_interval > tr.num_epochs > 0:
        c.warn(
            f"{p}.checkpoint_interval",
            "checkpoint_interval exceeds num_epochs: no checkpoint is kept",
        )
    _learning_rate(tr.learning_rate, f"{p}.learning_rate", c)
    reg = tr.regularizer
    c.within(reg, "weight", f"{p}.regularizer", 0)
    adam = tr.optimizer.adam
    a = f"{p}.optimizer.adam"
    if not tr.optimizer.HasField("adam"):
        c.error(f"{p}.optimizer", "optimizer { adam { ... } } is required")
    c.within(adam, "epsilon", a, 0, low_open=True)
    for name in ("beta1", "beta2"):
        c.within(adam, name, a, 0, 1, low_open=True)
    scaling = tr.cost_scaling
    if scaling.enabled:
        for name in ("initial_exponent", "increment", "decrement"):
            c.within(scaling, name, f"{p}.cost_scaling", 0, low_open=True, required=True)


def _learning_rate(lr: training_config_pb2.LearningRateConfig, p: str, c: Checker) -> None:
    which = lr.WhichOneof("learning_rate")
    if which is None:
        c.error(p, "learning_rate needs soft_start_annealing_schedule (or early_stopping_...)")
        return
    schedule = getattr(lr, which)
    s = f"{p}.{which}"
    for name in ("min_learning_rate", "max_learning_rate"):
        c.within(schedule, name, s, 0, low_open=True, required=True)
    if schedule.min_learning_rate > schedule.max_learning_rate:
        c.error(
            f"{s}.min_learning_rate",
            f"min_learning_rate ({schedule.min_learning_rate:g}) exceeds max_learning_rate "
            f"({schedule.max_learning_rate:g})",
        )
    if which == "soft_start_annealing_schedule":
        c.within(schedule, "soft_start", s, 0, 1, required=True)
        c.within(schedule, "annealing", s, 0, 1, required=True)
        if schedule.soft_start > schedule.annealing:
            c.error(f"{s}.annealing", "annealing must not come before soft_start")


def check_dataset_convert(
    spec: dataset_export_config_pb2.DatasetExportConfig, c: Checker, check_paths: bool
) -> None:
    which = spec.WhichOneof("convert_config_type")
    if which is None:
        c.error("kitti_config", "a dataset-convert spec needs kitti_config (or coco_config)")
    elif which == "kitti_config":
        _kitti(spec.kitti_config, c, check_paths)
    for source_class in spec.target_class_mapping:
        if source_class != source_class.lower():
            c.warn(
                keyed("target_class_mapping", source_class),
                f"class {source_class!r} has capitals; dataset_convert lower-cases class names",
            )


def _kitti(k: dataset_export_config_pb2.KITTIConfig, c: Checker, check_paths: bool) -> None:
    p = "kitti_config"
    for name in ("root_directory_path", "image_dir_name", "label_dir_name", "image_extension"):
        if not getattr(k, name):
            c.error(f"{p}.{name}", f"{name} is required")
    if k.image_extension and not k.image_extension.startswith("."):
        c.error(f"{p}.image_extension", f"image_extension needs its dot: '.{k.image_extension}'")
    if k.HasField("partition_mode") and k.partition_mode not in PARTITION_MODES:
        c.error(
            f"{p}.partition_mode",
            f"partition_mode must be 'random' or 'sequence', got {k.partition_mode!r}",
        )
    if k.partition_mode == "random" and k.num_partitions != 2:
        c.error(
            f"{p}.num_partitions",
            f"random partitioning makes 2 partitions (train, val), got {k.num_partitions}",
        )
    c.within(k, "num_partitions", p, 0, low_open=True, required=True)
    c.within(k, "num_shards", p, 0, low_open=True, required=True)
    c.within(k, "val_split", p, 0, 100)
    if check_paths and k.root_directory_path:
        c.existing(f"{p}.root_directory_path", k.root_directory_path, "folder")
        root = Path(k.root_directory_path)
        for name in ("image_dir_name", "label_dir_name"):
            if getattr(k, name):
                c.existing(f"{p}.{name}", str(root / getattr(k, name)), "folder")

"""TAO experiment spec (`heron.v1.tao.Experiment`) → `TrainingSettings` and the data to train on.

The one place training reads the protobuf. TAO's rule for absent fields is proto3's (zero);
where TAO's own loader would refuse a zero (zoom, learning rates, batch size) the spec
checker (`heron.core.config.tao.checks`) has already refused the spec, and where a zero is
legal but useless to us the dataclass default stands (documented in docs/training.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron.evaluation.model_settings import ClusterSettings
from heron.training.settings import (
    AugmentSettings,
    CostClass,
    EvalSettings,
    ModelSettings,
    Objective,
    OptimSettings,
    RasterClass,
    TrainingSettings,
)

if TYPE_CHECKING:
    from heron.evaluation.kitti import KittiDataset
    from heron.v1.tao.experiment_pb2 import Experiment

ALGORITHMS = {0: "DBSCAN", 1: "NMS", 2: "HYBRID"}
REGULARIZERS = {0: "NO_REG", 1: "L1", 2: "L2"}
AP_MODES = {0: "SAMPLE", 1: "INTEGRATE"}


def _clean(value: Any) -> Any:
    """Proto floats are float32: 0.005 arrives as 0.004999999888; keep 7 significant digits."""
    return float(f"{value:.7g}") if isinstance(value, float) else value


def _present(message: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The scalar fields of `message` that the spec sets, by name."""
    return {n: _clean(getattr(message, n)) for n in names if message.HasField(n)}


def from_experiment(spec: Experiment, base_dir: Path | None = None) -> TrainingSettings:
    """Build checked settings; relative pretrained paths resolve against `base_dir`."""
    from heron.core.config.tao import defaults as tao_defaults  # protobuf only here

    classes = tuple(tao_defaults.output_classes(spec))
    raster = {}
    for name in spec.bbox_rasterizer_config.target_class_config:
        r = tao_defaults.effective_rasterizer(spec, name)
        raster[name] = RasterClass(
            cov_center_x=_clean(r.cov_center_x),
            cov_center_y=_clean(r.cov_center_y),
            cov_radius_x=_clean(r.cov_radius_x),
            cov_radius_y=_clean(r.cov_radius_y),
            bbox_min_radius=_clean(r.bbox_min_radius),
        )
    cost = {}
    for target in spec.cost_function_config.target_classes:
        c = tao_defaults.effective_cost(spec, target.name)
        objectives = {
            k: Objective(o.initial_weight, o.weight_target) for k, o in c.objectives.items()
        }
        cost[target.name] = CostClass(
            c.class_weight,
            c.coverage_foreground_weight,
            objectives.get("cov", Objective(0.0, 0.0)),
            objectives.get("bbox", Objective(0.0, 0.0)),
        )
    clustering = {}
    for name in spec.postprocessing_config.target_class_config:
        cl = tao_defaults.effective_clustering(spec, name)
        clustering[name] = ClusterSettings(
            coverage_threshold=_clean(cl.coverage_threshold),
            dbscan_eps=_clean(cl.dbscan_eps),
            dbscan_min_samples=_clean(cl.dbscan_min_samples),
            minimum_bounding_box_height=cl.minimum_bounding_box_height,
            clustering_algorithm=cl.algorithm.upper(),  # type: ignore[arg-type]
            dbscan_confidence_threshold=_clean(cl.dbscan_confidence_threshold),
            nms_iou_threshold=_clean(cl.nms_iou_threshold),
            nms_confidence_threshold=_clean(cl.nms_confidence_threshold),
        )
    rasterizer = spec.bbox_rasterizer_config
    costs = spec.cost_function_config
    return TrainingSettings(
        classes=classes,
        model=_model(spec, base_dir),
        raster=raster,
        deadzone_radius=_clean(rasterizer.deadzone_radius),
        cost=cost,
        enable_autoweighting=costs.enable_autoweighting,
        **_present(costs, ("min_objective_weight", "max_objective_weight")),
        clustering=clustering,
        augment=_augment(spec),
        optim=_optim(spec),
        evaluation=_evaluation(spec),
        class_mapping=dict(spec.dataset_config.target_class_mapping),
        **({"random_seed": spec.random_seed} if spec.HasField("random_seed") else {}),
    )


def _model(spec: Experiment, base_dir: Path | None) -> ModelSettings:
    m = spec.model_config
    pre = spec.augmentation_config.preprocessing
    pretrained = m.pretrained_model_file
    if pretrained and base_dir is not None and not Path(pretrained).is_absolute():
        pretrained = str(base_dir / pretrained)
    bbox = m.objective_set.bbox
    values: dict[str, Any] = {
        "arch": m.arch or "resnet",
        "pretrained_model_file": pretrained,
        "freeze_blocks": tuple(int(b) for b in m.freeze_blocks),
        "freeze_bn": m.freeze_bn,
        "load_graph": m.load_graph,
        "bbox_scale": _clean(bbox.scale) if bbox.HasField("scale") else 35.0,
        "bbox_offset": _clean(bbox.offset) if bbox.HasField("offset") else 0.5,
    }
    if m.HasField("num_layers"):
        values["num_layers"] = m.num_layers
    if m.HasField("output_stride"):
        values["output_stride"] = m.output_stride
    if m.HasField("use_batch_norm"):
        values["use_batch_norm"] = m.use_batch_norm
    if pre.HasField("output_image_width"):
        values["input_width"] = pre.output_image_width
    if pre.HasField("output_image_height"):
        values["input_height"] = pre.output_image_height
    return ModelSettings(**values)


def _augment(spec: Experiment) -> AugmentSettings:
    aug = spec.augmentation_config
    return AugmentSettings(
        **_present(aug.preprocessing, ("min_bbox_width", "min_bbox_height")),
        **_present(
            aug.spatial_augmentation,
            (
                "hflip_probability",
                "vflip_probability",
                "zoom_min",
                "zoom_max",
                "translate_max_x",
                "translate_max_y",
                "rotate_rad_max",
                "rotate_probability",
                "mosaic_probability",
                "mosaic_min_scale",
                "mosaic_off_last_epochs",
            ),
        ),
        **_present(
            aug.color_augmentation,
            (
                "hue_rotation_max",
                "saturation_shift_max",
                "contrast_scale_max",
                "contrast_center",
                "color_shift_stddev",
            ),
        ),
    )


def _optim(spec: Experiment) -> OptimSettings:
    t = spec.training_config
    values: dict[str, Any] = {}
    if t.HasField("batch_size_per_gpu"):
        values["batch_size"] = t.batch_size_per_gpu
    if t.HasField("num_epochs"):
        values["num_epochs"] = t.num_epochs
    if t.HasField("checkpoint_interval") and t.checkpoint_interval > 0:
        values["checkpoint_interval"] = t.checkpoint_interval
    if t.HasField("ema_decay"):
        values["ema_decay"] = _clean(t.ema_decay)
    if t.HasField("enable_qat"):
        values["enable_qat"] = t.enable_qat
    if t.learning_rate.HasField("soft_start_annealing_schedule"):
        values.update(
            _present(
                t.learning_rate.soft_start_annealing_schedule,
                ("min_learning_rate", "max_learning_rate", "soft_start", "annealing"),
            )
        )
    if t.HasField("regularizer"):
        values["regularizer"] = REGULARIZERS[t.regularizer.type]
        values["regularizer_weight"] = _clean(t.regularizer.weight)
    if t.optimizer.HasField("adam"):
        adam = _present(t.optimizer.adam, ("epsilon", "beta1", "beta2"))
        values.update({f"adam_{k}": v for k, v in adam.items()})
    return OptimSettings(**values)


def _evaluation(spec: Experiment) -> EvalSettings:
    e = spec.evaluation_config
    values: dict[str, Any] = {
        "minimum_overlap": {
            k: _clean(v) for k, v in e.minimum_detection_ground_truth_overlap.items()
        },
        "box_limits": {
            name: (b.minimum_height, b.maximum_height, b.minimum_width, b.maximum_width)
            for name, b in e.evaluation_box_config.items()
        },
        "average_precision_mode": AP_MODES[e.average_precision_mode],
    }
    if e.HasField("validation_period_during_training") and e.validation_period_during_training:
        values["validation_period"] = e.validation_period_during_training
    if e.HasField("first_validation_epoch"):
        values["first_validation_epoch"] = e.first_validation_epoch
    return EvalSettings(**values)


def _source_dir(path: str, base_dir: Path) -> Path:
    """A TAO `tfrecords_path` glob ('DIR/*') → DIR, relative paths against the spec's folder."""
    text = path.rstrip("*").rstrip("/") or "."
    folder = Path(text)
    return folder if folder.is_absolute() else base_dir / folder


def datasets(spec: Experiment, base_dir: Path) -> tuple[list[KittiDataset], list[KittiDataset]]:
    """(training, validation) KITTI datasets of `dataset_config`.

    A data source's `tfrecords_path` names a `heron data split` folder (TAO: the TFRecords of
    `dataset_convert`); `validation_fold` picks the validation fold of each source, as TAO
    does, and `validation_data_source` names a separate split or KITTI folder instead.
    """
    from heron.training.data.split import read_partitions, training_datasets

    config = spec.dataset_config
    if not config.data_sources:
        raise ValueError("[dataset_config.data_sources] expected at least one data source")
    train: list[KittiDataset] = []
    val: list[KittiDataset] = []
    by_fold = config.WhichOneof("dataset_split_type") != "validation_data_source"
    for source in config.data_sources:
        folder = _source_dir(source.tfrecords_path, base_dir)
        if by_fold:
            t, v = training_datasets(folder, config.validation_fold)
            train.append(t)
            val.append(v)
        else:
            train.append(_all_images(folder, read_partitions))
    if not by_fold:
        folder = _source_dir(config.validation_data_source.tfrecords_path, base_dir)
        val.append(_all_images(folder, read_partitions))
    return train, val


def _all_images(folder: Path, read_partitions: Any) -> KittiDataset:
    from heron.evaluation.kitti import KittiDataset
    from heron.training.data.split import PARTITIONS_FILE, read_partitions_summary

    if (folder / PARTITIONS_FILE).is_file():
        summary = read_partitions_summary(folder)
        images = [p for fold in read_partitions(folder).values() for p in fold]
        return KittiDataset(
            summary["root"], summary["image_dir"], summary["label_dir"], images=images
        )
    return KittiDataset(folder)

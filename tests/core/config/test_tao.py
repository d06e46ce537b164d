"""TAO DetectNet_v2 specs: the reference fixtures load with the right values in both syntaxes,
TAO-style quirks parse, defaults resolve in one place, and printing never shows a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from google.protobuf import text_format
from heron.core.config.diagnostics import ConfigError, Diagnostics, Severity
from heron.core.config.tao import (
    REDACTED,
    LoadedSpec,
    load_any_spec,
    load_dataset_convert_spec,
    load_experiment_spec,
    spec_to_dict,
)
from heron.core.config.tao import defaults as tao_defaults
from heron.core.config.tao.text_format import parse_text
from heron.v1.tao import dataset_export_config_pb2, experiment_pb2

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tao"
TRAIN = FIXTURES / "detectnet_v2_train_resnet18_facemask.txt"
TRAIN_YAML = FIXTURES / "detectnet_v2_train_resnet18_facemask.yaml"
MOBILENET = FIXTURES / "detectnet_v2_train_mobilenet_v2_facemask.txt"
RETRAIN = FIXTURES / "detectnet_v2_retrain_resnet18_facemask.txt"
CONVERT = FIXTURES / "detectnet_v2_dataset_convert_facemask.txt"
CONVERT_YAML = FIXTURES / "detectnet_v2_dataset_convert_facemask.yaml"


def experiment(path: Path) -> experiment_pb2.Experiment:
    message = load_experiment_spec(path, check_paths=False).message
    assert isinstance(message, experiment_pb2.Experiment)
    return message


@pytest.mark.parametrize("path", [TRAIN, TRAIN_YAML, MOBILENET, RETRAIN])
def test_reference_specs_load_with_their_values(path: Path) -> None:
    loaded = load_experiment_spec(path, check_paths=False)
    spec = loaded.message
    assert isinstance(spec, experiment_pb2.Experiment)
    assert loaded.kind == "experiment"
    assert loaded.diagnostics == []
    assert loaded.source == path
    assert dict(spec.dataset_config.target_class_mapping) == {
        "with_mask": "mask",
        "without_mask": "no-mask",
        "mask_weared_incorrect": "no-mask",
    }
    assert tao_defaults.input_shape(spec) == (3, 544, 960)
    assert tao_defaults.output_grid(spec) == (34, 60)
    assert tao_defaults.output_classes(spec) == ["mask", "no-mask"]
    assert spec.dataset_config.HasField("validation_fold")
    assert spec.dataset_config.validation_fold == 0
    assert spec.evaluation_config.average_precision_mode == spec.evaluation_config.INTEGRATE
    assert spec.bbox_rasterizer_config.deadzone_radius == pytest.approx(0.4)
    assert spec.cost_function_config.target_classes[1].class_weight == 4.0


def test_resnet18_mobilenet_and_retrain_differ_where_they_should() -> None:
    resnet, mobilenet, retrain = experiment(TRAIN), experiment(MOBILENET), experiment(RETRAIN)
    assert (resnet.model_config.arch, resnet.model_config.num_layers) == ("resnet", 18)
    assert list(resnet.model_config.freeze_blocks) == [0.0, 1.0]
    assert mobilenet.model_config.arch == "mobilenet_v2"
    assert not mobilenet.model_config.HasField("num_layers")
    assert tao_defaults.effective_clustering(mobilenet, "mask").algorithm == "nms"
    assert tao_defaults.effective_clustering(resnet, "no-mask").algorithm == "dbscan"
    assert retrain.model_config.load_graph
    assert retrain.model_config.pretrained_model_file.endswith("_pruned.hdf5")
    lr = tao_defaults.effective_learning_rate(retrain)
    assert (lr.min_learning_rate, lr.max_learning_rate) == pytest.approx((5e-07, 5e-05))


@pytest.mark.parametrize(("text", "yaml_twin"), [(TRAIN, TRAIN_YAML), (CONVERT, CONVERT_YAML)])
def test_yaml_twin_equals_text_form(text: Path, yaml_twin: Path) -> None:
    a = load_any_spec(text, check_paths=False)
    b = load_any_spec(yaml_twin, check_paths=False)
    assert a.kind == b.kind
    assert a.message == b.message
    assert spec_to_dict(a.message) == spec_to_dict(b.message)


def test_dataset_convert_spec_values() -> None:
    loaded = load_dataset_convert_spec(CONVERT, check_paths=False)
    spec = loaded.message
    assert isinstance(spec, dataset_export_config_pb2.DatasetExportConfig)
    kitti = spec.kitti_config
    assert (kitti.root_directory_path, kitti.image_dir_name, kitti.label_dir_name) == (
        "data/facemask/kitti/train",
        "images",
        "labels",
    )
    assert (kitti.image_extension, kitti.partition_mode) == (".jpg", "random")
    assert (kitti.num_partitions, kitti.num_shards) == (2, 10)
    assert kitti.val_split == pytest.approx(20)
    assert spec.target_class_mapping["mask_weared_incorrect"] == "no-mask"
    assert load_any_spec(CONVERT, check_paths=False).kind == "dataset_convert"


def test_normalized_output_round_trips_through_yaml(tmp_path: Path) -> None:
    original = experiment(TRAIN)
    printed = tmp_path / "normalized.yaml"
    printed.write_text(yaml.safe_dump(spec_to_dict(original), sort_keys=False))
    assert experiment(printed) == original


def test_spec_to_dict_keeps_tao_names_explicit_zeros_and_sorted_maps() -> None:
    data = spec_to_dict(experiment(TRAIN))
    assert list(data) == [
        "random_seed",
        "dataset_config",
        "augmentation_config",
        "postprocessing_config",
        "model_config",
        "evaluation_config",
        "cost_function_config",
        "training_config",
        "bbox_rasterizer_config",
    ]
    assert data["dataset_config"]["validation_fold"] == 0
    assert data["augmentation_config"]["spatial_augmentation"]["vflip_probability"] == 0.0
    assert list(data["dataset_config"]["target_class_mapping"]) == [
        "mask_weared_incorrect",
        "with_mask",
        "without_mask",
    ]
    clustering = data["postprocessing_config"]["target_class_config"]["mask"]["clustering_config"]
    assert clustering["clustering_algorithm"] == "DBSCAN"
    assert "nms_iou_threshold" not in clustering  # absent in the file, absent in the output


# Real TAO/TLT spec files use these; each must parse as TAO's own parser would.
QUIRKS = {
    "comment-out block and colon before brace": """
dataset_config {
  data_sources: {
    tfrecords_path: "t/*"
    image_directory_path: "i"
  }
  #validation_data_source: {
    #tfrecords_path: "v/*"
  #}
}""",
    "capitalised booleans and value: { } on one line": """
cost_function_config { enable_autoweighting: True }
training_config { visualizer { enabled: False
  target_class_config { key: "car" value: { coverage_threshold: 0.005 } } } }""",
    "TLT 2 fractional dbscan_min_samples and float32 noise": """
postprocessing_config { target_class_config { key: "mask" value { clustering_config {
  coverage_threshold: 0.00499999988824 dbscan_min_samples: 0.0500000007451 } } } }""",
    "closing brace after the last field, list syntax": """
model_config { freeze_blocks: [0, 1] num_layers: 18 }""",
    "visualizer with clearml and wandb blocks": """
training_config { visualizer { clearml_config { project: "p" tags: "a" tags: "b" }
  wandb_config { project: "p" name: "n" mode: OFFLINE } } }""",
}


@pytest.mark.parametrize("text", QUIRKS.values(), ids=QUIRKS.keys())
def test_tao_text_quirks_parse(text: str) -> None:
    diags = Diagnostics()
    message = experiment_pb2.Experiment()
    parse_text(text, message, Path("quirk.txt"), diags)
    assert diags.items == []
    assert message == text_format.Parse(text, experiment_pb2.Experiment())


def test_fractional_dbscan_min_samples_is_kept() -> None:
    message = text_format.Parse(QUIRKS["TLT 2 fractional dbscan_min_samples and float32 noise"],
                                experiment_pb2.Experiment())  # fmt: skip
    clustering = message.postprocessing_config.target_class_config["mask"].clustering_config
    assert clustering.dbscan_min_samples == pytest.approx(0.05)


def test_effective_values_fill_tao_zero_defaults() -> None:
    spec = experiment(MOBILENET)
    nms = tao_defaults.effective_clustering(spec, "no-mask")
    # absent from the file: TAO reads proto3 zeros
    assert (nms.dbscan_eps, nms.dbscan_min_samples, nms.confidence_threshold) == (0.0, 0.0, 0.0)
    assert nms.nms_iou_threshold == pytest.approx(0.4)
    ras = tao_defaults.effective_rasterizer(spec, "mask")
    assert (ras.cov_radius_x, ras.bbox_min_radius, ras.deadzone_radius) == pytest.approx(
        (0.4, 1.0, 0.4)
    )
    cost = tao_defaults.effective_cost(spec, "no-mask")
    assert cost.objectives["bbox"].initial_weight == 10.0
    with pytest.raises(KeyError, match="'person' has no postprocessing config"):
        tao_defaults.effective_clustering(spec, "person")


def test_paths_are_checked_against_the_spec_folder(tmp_path: Path) -> None:
    spec_text = TRAIN.read_text()
    (tmp_path / "data/facemask/kitti/train").mkdir(parents=True)
    (tmp_path / "data/facemask/tfrecords/kitti_trainval").mkdir(parents=True)
    (tmp_path / "data/facemask/tfrecords/kitti_trainval/fold-000").write_bytes(b"")
    path = tmp_path / "train.txt"
    path.write_text(spec_text)
    loaded = load_experiment_spec(path)
    missing = [d for d in loaded.diagnostics if d.severity is Severity.WARNING]
    assert [(d.field, d.line) for d in missing] == [
        ("model_config.pretrained_model_file", _line(spec_text, "pretrained_model_file"))
    ]
    assert "'models/pretrained/resnet18.hdf5' does not exist" in missing[0].message


SECRET = "nvapi-abc123-do-not-print"


@pytest.mark.parametrize("suffix", [".txt", ".yaml"])
def test_secrets_and_model_keys_never_reach_the_output(tmp_path: Path, suffix: str) -> None:
    """A wandb API key in the spec is kept for training but never printed; TAO's model key
    (`-k`) is a command-line argument, so no spec field carries it at all."""
    spec = experiment(TRAIN)
    spec.training_config.visualizer.wandb_config.key = SECRET
    spec.training_config.visualizer.wandb_config.project = "facemask"
    path = tmp_path / f"spec{suffix}"
    if suffix == ".txt":
        path.write_text(text_format.MessageToString(spec))
    else:
        path.write_text(yaml.safe_dump({**spec_to_dict(spec), "training_config": _with_key(spec)}))
    loaded = load_experiment_spec(path, check_paths=False)
    assert isinstance(loaded.message, experiment_pb2.Experiment)
    assert loaded.message.training_config.visualizer.wandb_config.key == SECRET
    printed = yaml.safe_dump(spec_to_dict(loaded.message))
    assert SECRET not in printed
    assert REDACTED in printed
    assert not _fields_named(loaded, ("key", "model_key", "tlt_model_key", "encryption_key"))


def test_a_bad_secret_value_is_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "spec.txt"
    path.write_text(
        TRAIN.read_text().replace(
            "    enabled: true\n", f"    enabled: true\n    wandb_config {{ key: {SECRET} }}\n"
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_experiment_spec(path, check_paths=False)
    assert SECRET not in str(caught.value)
    assert "not shown" in str(caught.value)


def _with_key(spec: experiment_pb2.Experiment) -> dict[str, object]:
    data = spec_to_dict(spec)["training_config"]
    data["visualizer"]["wandb_config"]["key"] = SECRET
    return dict(data)


def _fields_named(loaded: LoadedSpec, names: tuple[str, ...]) -> list[str]:
    """Every field path of the normalized output whose last segment is in `names`, unredacted."""
    found: list[str] = []

    def walk(value: object, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k in names and v != REDACTED:
                    found.append(f"{path}.{k}")
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for item in value:
                walk(item, path)

    walk(spec_to_dict(loaded.message), "")
    return found


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)
